"""Any OpenAI-compatible chat endpoint (OpenAI, vLLM, llama.cpp server, Ollama, DeepSeek, Qwen, ...).

Uses the official `openai` SDK with `base_url`, its own retries turned off: this adapter retries 429, 5xx,
timeouts, dropped connections and malformed bodies with exponential backoff, honouring `Retry-After`, and reports
the number of tries on the `Completion` (one ledger row is written by the pipeline per *successful* call; failed
attempts are not billed and are logged, not recorded). A stream that ends with neither text nor usage is a
malformed response: retried like other upstream faults, never billed as a success. Spending limits are the
pipeline's (`QueryBudget`): `estimate` prices a call before it is made. The key is read from the environment variable named in the config, at
the first call, and never appears in a log or an error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ragcli.cost.prices import PriceTable
from ragcli.cost.provider_usage import openai_usage
from ragcli.cost.tokens import counter_for
from ragcli.errors import BackendError
from ragcli.generation.llm_common import (
    MESSAGE_OVERHEAD_TOKENS,
    MalformedResponse,
    chat_dicts,
    check_model_and_timeout,
    classify_sdk_error,
    message_tokens,
)
from ragcli.generation.retry import Attempt, Failure, RetryPolicy, call_with_retries
from ragcli.optional import api_key, require
from ragcli.types import Completion, Message, Usage

log = logging.getLogger(__name__)

DEFAULT_CONTEXT_WINDOW = 8192

__all__ = [
    "DEFAULT_CONTEXT_WINDOW",
    "MESSAGE_OVERHEAD_TOKENS",
    "MalformedResponse",
    "OpenAICompatibleLLM",
    "classify_sdk_error",
]


class OpenAICompatibleLLM:
    """A chat model behind an OpenAI-compatible HTTP API, priced from the `PriceTable`."""

    provider = "openai"

    def __init__(
        self,
        model: str,
        prices: PriceTable,
        *,
        base_url: str | None = None,
        api_key_env: str | None = "OPENAI_API_KEY",
        context_window: int | None = None,
        temperature: float = 0.0,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        price_as: str | None = None,
        retry_policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        check_model_and_timeout(model, "gpt-4o-mini", timeout_s)
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.model = model
        self.prices = prices
        self.base_url = base_url
        self.api_key_env = api_key_env
        self.temperature = temperature
        self.timeout_s = timeout_s
        self.price_model = price_as or model
        self.policy = retry_policy or RetryPolicy(max_retries=max_retries)
        self._sleep = sleep
        self._counter = counter_for(model)
        window = context_window or prices.context_window(self.price_model)
        if window is None:
            log.info(
                "context window of %s unknown; assuming %d (set llm.context_window)",
                model,
                DEFAULT_CONTEXT_WINDOW,
            )
        self._context_window = window or DEFAULT_CONTEXT_WINDOW
        self._client: Any = None
        self._key: str | None = None

    # ------------------------------------------------------------------ the LLM protocol

    @property
    def model_name(self) -> str:
        return self.model

    @property
    def context_window(self) -> int:
        return self._context_window

    @property
    def token_count_is_estimate(self) -> bool:
        return self._counter.estimate

    def count_tokens(self, text: str) -> int:
        return self._counter(text) if text else 0

    def estimate(self, messages: Sequence[Message], max_tokens: int) -> Usage:
        """The most this call can cost before it is made: every prompt token uncached, every output token used."""
        prompt = message_tokens(self.count_tokens, messages) + 3
        usd = self.prices.estimate_usd(self.price_model, prompt, max_tokens)
        return Usage(input_tokens=prompt, output_tokens=max_tokens, usd=usd, calls=1)

    def complete(self, messages: Sequence[Message], *, max_tokens: int) -> Completion:
        client = self._get_client()
        attempts: list[Attempt] = []
        t0 = time.perf_counter()

        def call() -> Any:
            resp = client.chat.completions.create(**self._request(messages, max_tokens))
            if not hasattr(resp, "choices") or not resp.choices:
                raise MalformedResponse(f"expected a chat completion with choices, got {type(resp).__name__}")
            return resp

        resp = call_with_retries(
            call, self._classify, self.policy, attempts, what=self._what(), sleep=self._sleep
        )
        seconds = time.perf_counter() - t0
        text = resp.choices[0].message.content or ""
        usage = self._usage(getattr(resp, "usage", None), messages, text)
        return Completion(text, self.model, usage, seconds, provider=self.provider, attempts=len(attempts))

    def stream(self, messages: Sequence[Message], *, max_tokens: int) -> Iterator[str | Completion]:
        """Yield text pieces, then the final `Completion` with the server's usage (`include_usage`).

        A try that fails before any text is shown (an error on opening, a stream that breaks off or ends empty)
        is retried; once text has been shown, a failure is reported, not repeated.
        """
        client = self._get_client()
        attempts: list[Attempt] = []
        t0 = time.perf_counter()
        request = {
            **self._request(messages, max_tokens),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        pieces: list[str] = []
        raw_usage: Any = None

        def first_piece() -> tuple[Any, str | None]:
            """Open the stream and read up to its first text; an empty or broken stream raises (retried)."""
            nonlocal raw_usage
            stream = iter(client.chat.completions.create(**request))
            for chunk in stream:
                raw_usage = getattr(chunk, "usage", None) or raw_usage
                delta = _delta_text(chunk)
                if delta:
                    return stream, delta
            if raw_usage is None:
                raise MalformedResponse("the stream ended with neither text nor usage")
            return stream, None

        stream, first = call_with_retries(
            first_piece, self._classify, self.policy, attempts, what=self._what(), sleep=self._sleep
        )
        if first is not None:
            pieces.append(first)
            yield first
        try:
            for chunk in stream:
                raw_usage = getattr(chunk, "usage", None) or raw_usage
                delta = _delta_text(chunk)
                if delta:
                    pieces.append(delta)
                    yield delta
        except Exception as exc:
            failure = self._classify(exc)
            if failure is None:
                raise
            raise BackendError(
                f"the stream from {self._what()} broke off: {failure.error}", status=failure.error.status
            ) from exc
        text = "".join(pieces)
        yield Completion(
            text,
            self.model,
            self._usage(raw_usage, messages, text),
            time.perf_counter() - t0,
            provider=self.provider,
            attempts=len(attempts),
        )

    # ------------------------------------------------------------------ helpers

    def _what(self) -> str:
        return f"{self.model} at {self.base_url or 'api.openai.com'}"

    def _request(self, messages: Sequence[Message], max_tokens: int) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": chat_dicts(messages),
            "max_tokens": max_tokens,
            "temperature": self.temperature,
        }

    def _get_client(self) -> Any:
        if self._client is not None:
            return self._client
        where = self.base_url or "api.openai.com"
        if self.api_key_env:
            key = api_key(
                self.api_key_env,
                what=f"{self.model} at {where}",
                config_key="llm.api_key_env (null for a server that needs no key)",
            )
        else:
            key = "no-key"  # the SDK insists on a value; keyless servers ignore it
        self._key = key
        openai = require("openai", extra="openai", purpose=f"llm type 'openai' ({self.model})")
        self._client = openai.OpenAI(
            api_key=key, base_url=self.base_url, timeout=self.timeout_s, max_retries=0
        )
        return self._client

    def _scrub(self, text: str) -> str:
        """Remove the key from any text taken from a server or an exception."""
        if self._key and len(self._key) >= 4:
            text = text.replace(self._key, "***")
        return text

    def _classify(self, exc: Exception) -> Failure | None:
        import openai

        return classify_sdk_error(
            openai, exc, self._what(), self.model, self.api_key_env, self.timeout_s, self._scrub
        )

    def _usage(self, raw: Any, messages: Sequence[Message], text: str) -> Usage:
        """The server's usage, priced: `prompt_tokens` includes cached tokens (OpenAI `cached_tokens`, DeepSeek
        `prompt_cache_hit_tokens`), `completion_tokens` includes reasoning tokens; see `cost/provider_usage.py`."""
        counted = openai_usage(raw)
        if counted is None:
            log.warning("%s returned no token usage; recording estimated counts", self._what())
            est = self.estimate(messages, 0)
            return self.prices.usage_for(self.price_model, est.input_tokens, self.count_tokens(text))
        return self.prices.priced(self.price_model, counted)


def _delta_text(chunk: Any) -> str:
    """The text a stream chunk adds (empty for usage-only and role-only chunks)."""
    return "".join(getattr(c.delta, "content", None) or "" for c in getattr(chunk, "choices", None) or [])
