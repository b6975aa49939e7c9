"""Local embeddings with sentence-transformers; the packaged all-MiniLM-L6-v2 by default (offline, free)."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragcli.errors import BackendError, InputError, ResourceMissing
from ragcli.ingest.protocols import Embeddings
from ragcli.resources import PACKAGED_EMBEDDER, offline_env, resolve_embedding_model
from ragcli.trained_models import TRAINED_PREFIX, model_version, trained_dir, warn_if_gated_out
from ragcli.types import Usage, Vectors

log = logging.getLogger(__name__)

BULK_TEXTS = 256
"""A call with at least this many texts is a bulk embed (an ingest's buffer), where `fastest` may use torch."""
BACKENDS = ("torch", "onnx", "openvino", "openvino_int8", "auto", "fastest")


def _resolve_trained(model: str, home: Path | None) -> tuple[str, str]:
    """The folder of `trained:NAME` and the name it reports: `trained:NAME@<weights version>`.

    The version goes into the ingest fingerprint (which holds the embedder's name), so a collection embedded
    before the model was re-trained under the same name is re-embedded by the next ingest.
    """
    name = model[len(TRAINED_PREFIX) :]
    path = trained_dir("embedders", home) / name
    if not (path / "config.json").is_file():
        root = trained_dir("embedders", home)
        have = (
            sorted(p.name for p in root.iterdir() if (p / "config.json").is_file()) if root.is_dir() else []
        )
        raise ResourceMissing(
            f"embedder {model!r} not found at {str(path)!r} (trained embedders: {', '.join(have) or 'none yet'}); "
            f"train it with `ragcli train embedder --name {name} --corpus ... --queries ... --qrels ...` "
            "(or --pairs FILE), or use all-MiniLM-L6-v2"
        )
    warn_if_gated_out(model, path, "embedders")
    version = model_version(path, "embedders")
    return str(path), f"{model}@{version}" if version else model


class HFTokenCounter:
    """Counts tokens exactly as the model reads them, special tokens ([CLS], [SEP]) included.

    Wraps a `tokenizers.Tokenizer` with truncation and padding turned off, so a long text reports its real length.
    """

    def __init__(self, backend: Any) -> None:
        from tokenizers import Tokenizer

        self._tok: Any = Tokenizer.from_str(backend.to_str())
        self._tok.no_truncation()
        self._tok.no_padding()

    @classmethod
    def from_file(cls, path: Path) -> HFTokenCounter:
        from tokenizers import Tokenizer

        return cls(Tokenizer.from_file(str(path)))

    def count(self, text: str) -> int:
        return len(self._tok.encode(text).ids)

    def count_many(self, texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in self._tok.encode_batch(list(texts))]


class SentenceTransformerEmbedder:
    """Embeds texts with a sentence-transformers model, in batches sorted by length.

    The model loads on the first `embed`; `dim`, `max_tokens` and `tokenizer` are read from the model folder's
    config files when it has them, so chunking and re-ingest of unchanged files never load torch.

    Args:
        model: `all-MiniLM-L6-v2` (the packaged model), a local folder, or a hub id (needs `HF_HUB_OFFLINE=0`).
        batch_size: Texts per forward pass.
        device: `cpu`, `cuda`, `mps`.
        backend: `torch` (sentence-transformers), `onnx` (ragcli's ONNX Runtime encoder: the model exported once,
            no torch at run time, the same vectors: cosine 0.99999 to torch), `auto` (`onnx` on a CPU when
            onnxruntime is installed and the model has mean or CLS pooling, else `torch`: the least memory and no
            torch import), `fastest` (as `auto`, but large batches go to whichever of the two this machine
            measured faster, see `backend_choice`), `openvino` (sentence-transformers' own, needs optimum), or
            `openvino_int8` (the model quantized once on this machine's first large batch and run by OpenVINO:
            ~2x torch on CPUs with int8 instructions, used only where every checked vector keeps cosine >= 0.99 to
            fp32; see `openvino_encoder`).
        home: ragcli home, where `trained:NAME` embedders live (default `$RAGCLI_HOME`).
    """

    def __init__(
        self,
        model: str = PACKAGED_EMBEDDER,
        *,
        batch_size: int = 32,
        device: str = "cpu",
        backend: str = "auto",
        home: Path | None = None,
    ) -> None:
        if batch_size < 1:
            raise InputError(f"embedder batch_size must be at least 1, got {batch_size}")
        if backend not in BACKENDS:
            raise InputError(f"embedder backend {backend!r} is not one of {', '.join(BACKENDS)}")
        self._name = model
        self._path = resolve_embedding_model(model)
        if model.startswith(TRAINED_PREFIX):
            self._path, self._name = _resolve_trained(model, home)
        self._batch_size = batch_size
        self._device = device
        self._backend = backend
        self._model: Any = None
        self._bulk: Any = None
        """What embeds large batches (`_bulk_model`): the model itself, or torch where `fastest` measured it faster."""
        self._counter: HFTokenCounter | None = None
        self._dim: int | None = None
        self._max_tokens: int | None = None
        folder = Path(self._path)
        self._folder = folder if folder.is_dir() else None
        if self._folder is None and Path(model).expanduser().suffix:
            raise ResourceMissing(
                f"embedding model folder {model!r} does not exist; give a folder with a "
                f"sentence-transformers model or use {PACKAGED_EMBEDDER!r} (packaged)"
            )

    # -- facts read without loading the model

    def _read_json(self, name: str) -> dict[str, Any] | None:
        if self._folder is None or not (self._folder / name).is_file():
            return None
        data = json.loads((self._folder / name).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else None

    @property
    def model_name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        if self._dim is None:
            pooling = self._read_json("1_Pooling/config.json")
            has_dense = self._folder is not None and any(self._folder.glob("*_Dense"))
            if pooling and "word_embedding_dimension" in pooling and not has_dense:
                self._dim = int(pooling["word_embedding_dimension"])
            else:
                model = self._load()
                getter = (
                    getattr(model, "get_sentence_embedding_dimension", None) or model.get_embedding_dimension
                )
                self._dim = int(getter())
        return self._dim

    @property
    def max_tokens(self) -> int:
        if self._max_tokens is None:
            cfg = self._read_json("sentence_bert_config.json")
            if cfg and cfg.get("max_seq_length"):
                self._max_tokens = int(cfg["max_seq_length"])
            else:
                self._max_tokens = int(self._load().max_seq_length)
        return self._max_tokens

    @property
    def tokenizer(self) -> HFTokenCounter:
        if self._counter is None:
            if self._folder is not None and (self._folder / "tokenizer.json").is_file():
                self._counter = HFTokenCounter.from_file(self._folder / "tokenizer.json")
            else:
                self._counter = HFTokenCounter(self._load().tokenizer.backend_tokenizer)
        return self._counter

    # -- the model

    def _onnx_usable(self) -> bool:
        """Whether `auto` picks ONNX Runtime: a CPU run, onnxruntime installed, a local folder it can read."""
        if self._device != "cpu" or self._folder is None or importlib.util.find_spec("onnxruntime") is None:
            return False
        pooling = self._read_json("1_Pooling/config.json") or {}
        plain = not any(self._folder.glob("*_Dense"))
        return (
            (self._folder / "tokenizer.json").is_file()
            and plain
            and bool(pooling.get("pooling_mode_mean_tokens") or pooling.get("pooling_mode_cls_token"))
        )

    @property
    def backend(self) -> str:
        """The backend that runs (what `auto` resolved to)."""
        if self._backend in ("auto", "fastest"):
            if self._bulk is not None:
                return self.bulk_backend  # measured on a large batch: one model serves every batch since
            return "onnx" if self._onnx_usable() else "torch"
        return self._backend

    def _load(self, texts: Sequence[str] = ()) -> Any:
        if self.backend == "openvino_int8":
            if self._folder is None:
                raise ResourceMissing(
                    f"embedder backend openvino_int8 needs a local model folder, got {self._name!r}; download it "
                    "to a folder, or use backend onnx"
                )
            return self._load_int8(texts)
        if self._model is None and self.backend == "onnx" and self._folder is not None:
            from ragcli.ingest.onnx_encoder import OnnxEncoder

            t0 = time.perf_counter()
            try:
                self._model = OnnxEncoder(self._folder, max_tokens=self.max_tokens)
                log.info(
                    "loaded embedding model %s (ONNX Runtime) in %.1fs", self._name, time.perf_counter() - t0
                )
                return self._model
            except (ResourceMissing, BackendError) as exc:
                if self._backend == "onnx":
                    raise
                log.warning("ONNX Runtime cannot run %s (%s); using torch", self._name, exc)
                self._backend = "torch"
        if self._model is None:
            self._model = self._load_torch()
        return self._model

    def _load_int8(self, texts: Sequence[str]) -> Any:
        """The OpenVINO int8 encoder; built again when it still runs fp32 for want of calibration texts and this
        batch has enough to quantize on."""
        from ragcli.ingest.openvino_encoder import MIN_CALIBRATION, OpenVinoInt8Encoder

        assert self._folder is not None
        if self._model is None or (self._model.needs_calibration and len(texts) >= MIN_CALIBRATION):
            t0 = time.perf_counter()
            self._model = OpenVinoInt8Encoder(self._folder, max_tokens=self.max_tokens, calibration=texts)
            log.info(
                "loaded embedding model %s (%s) in %.1fs",
                self._name,
                "OpenVINO int8" if self._model.int8 else "ONNX Runtime fp32 until int8 is ready",
                time.perf_counter() - t0,
            )
        return self._model

    def _load_torch(self) -> Any:
        offline_env()
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        t0 = time.perf_counter()
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ResourceMissing(
                "sentence-transformers is not installed; run `pip install 'ragcli[local]'`"
            ) from exc
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # "Loading weights" bars on stderr are noise for a CLI
            backend = "torch" if self.backend == "onnx" else self.backend  # a hub id under onnx: torch
            model = SentenceTransformer(self._path, device=self._device, backend=backend)  # type: ignore[arg-type]
        except Exception as exc:
            raise BackendError(
                f"could not load embedding model {self._name!r} from {self._path}: {exc}"
            ) from exc
        log.info("loaded embedding model %s in %.1fs", self._name, time.perf_counter() - t0)
        return model

    def _bulk_model(self, texts: Sequence[str]) -> Any:
        """The model for a large batch: under `fastest`, the back-end measured fastest on this machine.

        Only a `fastest` embedder that would run ONNX Runtime asks (`backend_choice`). Where torch wins, this process
        (an ingest) has paid torch's import anyway, so torch embeds its small batches too and ONNX Runtime's session
        is not kept; a process that never embeds a large batch (a query) never loads torch.
        """
        if self._backend != "fastest" or self.backend != "onnx" or self._folder is None:
            return self._load(texts)
        if self._bulk is None:
            choice = "onnx"
            measured: list[Any] = []  # the torch model the measurement loaded, reused if torch wins
            if importlib.util.find_spec("torch") and importlib.util.find_spec("sentence_transformers"):
                from ragcli.ingest.backend_choice import choose_bulk_backend
                from ragcli.ingest.onnx_encoder import model_key

                def torch_encode() -> Any:
                    measured.append(self._load_torch())
                    st = measured[0]
                    return lambda batch: st.encode(
                        list(batch), batch_size=len(batch), show_progress_bar=False
                    )

                choice = choose_bulk_backend(
                    model_key(self._folder),
                    {"onnx": lambda: self._load().encode, "torch": torch_encode},
                    batch=self._batch_size,
                )
            if choice == "torch":  # one model in memory from here on, whichever won
                self._model = self._bulk = measured[0] if measured else self._load_torch()
            else:
                self._bulk = self._load()
        return self._bulk

    @property
    def bulk_backend(self) -> str:
        """The back-end of large batches (ingest): `backend`, or under `fastest` what this machine measured fastest."""
        from ragcli.ingest.onnx_encoder import OnnxEncoder

        if self._bulk is None:
            return self.backend
        return "onnx" if isinstance(self._bulk, OnnxEncoder) else "torch"

    def embed(self, texts: Sequence[str]) -> Embeddings:
        """Embed texts; returns L2-normalised vectors in the input order and the tokens the model read."""
        if not texts:
            return Embeddings(np.zeros((0, self.dim), dtype=np.float32), Usage(usd=0.0))
        limit = self.max_tokens
        model = self._bulk_model(texts) if len(texts) >= BULK_TEXTS else self._load(texts)
        from ragcli.ingest.onnx_encoder import OnnxEncoder  # light: numpy only until an encoder is built

        try:
            encodings = model.tokenize(texts) if isinstance(model, OnnxEncoder) else None
        except Exception as exc:
            raise BackendError(f"embedding with {self._name!r} failed: {exc}") from exc
        # an encoding is already cut at the window; `count_many`'s counts are capped at it below
        counts = (
            [len(e.ids) for e in encodings] if encodings is not None else self.tokenizer.count_many(texts)
        )
        # Sorting by length keeps padding small inside each batch: the forward pass costs the longest member.
        order = sorted(range(len(texts)), key=lambda i: counts[i])
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), self._batch_size):
            idx = order[start : start + self._batch_size]
            try:
                batch = [texts[i] for i in idx]
                if encodings is not None:
                    vecs = model.encode_tokenized([encodings[i] for i in idx])
                else:
                    vecs = model.encode(
                        batch,
                        batch_size=len(idx),
                        convert_to_numpy=True,
                        normalize_embeddings=True,
                        show_progress_bar=False,
                    )
            except Exception as exc:
                raise BackendError(f"embedding with {self._name!r} failed: {exc}") from exc
            out[idx] = np.asarray(vecs, dtype=np.float32)
        tokens = sum(min(c, limit) for c in counts)
        vectors: Vectors = out
        return Embeddings(vectors, Usage(input_tokens=tokens, usd=0.0, calls=1))

    def embed_query(self, text: str) -> Embeddings:
        return self.embed([text])
