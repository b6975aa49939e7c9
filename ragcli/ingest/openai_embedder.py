"""Embeddings from the OpenAI API (or a compatible server). Paid: never a default; chosen only in YAML."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ragcli.errors import BackendError, ConfigError, ResourceMissing
from ragcli.ingest.protocols import Embeddings
from ragcli.optional import api_key
from ragcli.types import Usage, Vectors

if TYPE_CHECKING:
    from ragcli.cost.prices import PriceTable

log = logging.getLogger(__name__)

_KNOWN_DIMS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}
_MAX_INPUT_TOKENS = 8191


class TiktokenCounter:
    """Counts tokens with tiktoken's cl100k_base (the encoding of OpenAI's embedding models)."""

    def __init__(self, encoding: str = "cl100k_base") -> None:
        from ragcli.resources import prepare_tiktoken

        prepare_tiktoken()
        import tiktoken

        self._enc = tiktoken.get_encoding(encoding)

    def count(self, text: str) -> int:
        return len(self._enc.encode(text, disallowed_special=()))


class OpenAIEmbedder:
    """Embeds with OpenAI's embeddings endpoint; `Usage.usd` is left to the price table (None = not priced here).

    Args:
        model: Embedding model name.
        base_url: A compatible server's URL; None for OpenAI.
        api_key_env: Name of the environment variable holding the key (the key never appears in config).
        dim: Vector size; needed for models not in the built-in list, and passed as `dimensions` when given.
        batch_size: Texts per request.
        prices: The price table that prices each request's tokens (default: the shipped sources, with no config
            overrides); a model it does not know is recorded at an unknown price, never $0.
    """

    def __init__(
        self,
        model: str = "text-embedding-3-small",
        *,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        dim: int | None = None,
        batch_size: int = 128,
        prices: PriceTable | None = None,
    ) -> None:
        if dim is None and model not in _KNOWN_DIMS:
            raise ConfigError(
                f"embedder.dim is required for model {model!r}; known models: {sorted(_KNOWN_DIMS)}"
            )
        if batch_size < 1:
            raise ConfigError(f"embedder.batch_size must be at least 1, got {batch_size}")
        self._model = model
        self._base_url = base_url
        self._api_key_env = api_key_env
        self._dim = dim or _KNOWN_DIMS[model]
        self._send_dim = dim is not None
        self._batch_size = batch_size
        self._client: Any = None
        self._counter: TiktokenCounter | None = None
        self._prices = prices

    @property
    def model_name(self) -> str:
        return self._model

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def max_tokens(self) -> int:
        return _MAX_INPUT_TOKENS

    @property
    def tokenizer(self) -> TiktokenCounter:
        if self._counter is None:
            self._counter = TiktokenCounter()
        return self._counter

    def _get_client(self) -> Any:
        if self._client is None:
            try:
                from openai import OpenAI
            except ImportError as exc:
                raise ResourceMissing(
                    "the openai package is not installed; run `pip install 'ragcli[openai]'`"
                ) from exc
            key = os.environ.get(self._api_key_env)
            if not key and self._base_url is None:
                key = api_key(
                    self._api_key_env, what=f"embeddings {self.model_name}", config_key="embedder.api_key_env"
                )
            self._client = OpenAI(api_key=key or "none", base_url=self._base_url)
        return self._client

    def embed(self, texts: Sequence[str]) -> Embeddings:
        if not texts:
            return Embeddings(np.zeros((0, self._dim), dtype=np.float32), Usage(usd=None))
        client = self._get_client()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        usage = Usage(usd=0.0)
        for start in range(0, len(order), self._batch_size):
            idx = order[start : start + self._batch_size]
            kwargs: dict[str, Any] = {"model": self._model, "input": [texts[i] for i in idx]}
            if self._send_dim:
                kwargs["dimensions"] = self._dim
            try:
                resp = client.embeddings.create(**kwargs)
            except Exception as exc:
                status = getattr(exc, "status_code", None)
                raise BackendError(
                    f"OpenAI embeddings call failed ({type(exc).__name__}: {exc})",
                    retryable=status in (429, 500, 502, 503, 504),
                    status=status,
                ) from exc
            for item in resp.data:
                out[idx[item.index]] = np.asarray(item.embedding, dtype=np.float32)
            usage = usage + self._priced(resp.usage)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        vectors: Vectors = (out / np.where(norms == 0, 1.0, norms)).astype(np.float32)
        return Embeddings(vectors, usage)

    def _priced(self, raw: Any) -> Usage:
        """One request's usage, priced (OpenAI bills embeddings by `usage.prompt_tokens`)."""
        from ragcli.cost.prices import PriceTable
        from ragcli.cost.provider_usage import openai_usage

        if self._prices is None:
            self._prices = PriceTable.load()
        counted = openai_usage(raw)
        if counted is None:  # a server that reports no usage: the tokens, so the dollars, are unknown
            return Usage(usd=None, calls=1)
        return self._prices.priced(self._model, counted)

    def embed_query(self, text: str) -> Embeddings:
        return self.embed([text])
