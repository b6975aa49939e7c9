"""A sentence-transformers encoder (BERT family, mean or CLS pooling) run by ONNX Runtime: no torch at run time.

The model is exported to ONNX once (with torch, ~10 s) and cached under `<home>/onnx/`; later processes load
only onnxruntime and tokenizers, which also takes the torch import (2-3 s) off every `ragcli query`.

Thread settings matter on shared CPUs: ONNX Runtime's worker threads spin while waiting by default, which on
an oversubscribed machine burns the cores the other threads need (measured: 0.5x torch with defaults). Here
spinning is off and the pool has as many threads as the process may use.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragcli.errors import BackendError, ResourceMissing
from ragcli.resources import cache_dir

log = logging.getLogger(__name__)

_EXPORT_VERSION = "ort-v2"
"""v2: exported with eager attention. The default (PyTorch's SDPA) exported a NaN guard after every softmax
(`Where(IsNaN(...))` over batch x heads x tokens x tokens) that OpenVINO and ONNX Runtime ran as separate passes;
the eager graph has none, and OpenVINO fuses its attention into one kernel. 256 SciFact abstracts, interleaved:
ONNX Runtime fp32 21.2 s vs 28.8 s (hidden states within 4.3e-5), OpenVINO int8 3.78 s vs 4.68 s at the same
cosine to fp32 (benchmarks/results/ingest.md). A new version is a new export folder: exported (and quantized) once
more."""


def usable_cores() -> int:
    """CPU cores this process may run on (the affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def model_key(model_dir: Path) -> str:
    """Identifies a model folder's export: its files' sizes and times, its path and the export version."""
    h = hashlib.sha256(_EXPORT_VERSION.encode())
    for name in ("config.json", "model.safetensors", "pytorch_model.bin", "tokenizer.json"):
        f = model_dir / name
        if f.is_file():
            st = f.stat()
            h.update(f"{name}:{st.st_size}:{st.st_mtime_ns}".encode())
    h.update(str(model_dir.resolve()).encode())
    return h.hexdigest()[:16]


def export_dir(model_dir: Path) -> Path:
    """Where the model's ONNX export (and what is derived from it, such as the int8 model) lives."""
    return cache_dir("onnx") / f"{model_dir.name}-{model_key(model_dir)}"


def export_onnx(model_dir: Path) -> Path:
    """The model's transformer as ONNX (last hidden state out), exported once and cached; needs torch once."""
    target = export_dir(model_dir) / "model.onnx"
    if target.is_file():
        return target
    t0 = time.perf_counter()
    try:
        import torch
        from transformers import AutoModel, AutoTokenizer
    except ImportError as exc:
        raise ResourceMissing(
            f"exporting the embedding model to ONNX needs torch and transformers once ({exc}); "
            "run `pip install 'ragcli[local]'` or use embedder.backend: torch"
        ) from exc
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    try:
        hf = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()
    except (TypeError, ValueError):
        # a model class without the choice keeps its default attention (see _EXPORT_VERSION)
        hf = AutoModel.from_pretrained(str(model_dir)).eval()

    class Encoder(torch.nn.Module):
        """Keyword call of the transformer (its positional order changed across transformers versions)."""

        def __init__(self) -> None:
            super().__init__()
            self.m = hf

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    names = ["input_ids", "attention_mask", "token_type_ids"]
    dummy = tok(["hello world", "a second, longer text"], padding=True, return_tensors="pt")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp.onnx")
    try:
        # the tracer's warnings (data-dependent branches it freezes, opset notes) are about the export's internals,
        # not the user's data; the exported model is checked against torch in the tests
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Encoder().eval(),
                tuple(dummy[k] for k in names),
                str(tmp),
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes={k: {0: "batch", 1: "seq"} for k in [*names, "last_hidden_state"]},
                opset_version=17,
                dynamo=False,
            )
    except Exception as exc:
        raise BackendError(
            f"could not export {model_dir} to ONNX: {exc}; use embedder.backend: torch"
        ) from exc
    tmp.replace(target)
    log.warning("exported the embedding model to ONNX once in %.0fs: %s", time.perf_counter() - t0, target)
    return target


class OnnxEncoder:
    """Encodes batches of texts into L2-normalised vectors, as the model's sentence-transformers modules do.

    Args:
        model_dir: A sentence-transformers model folder with `tokenizer.json` and a pooling config.
        max_tokens: The model's max sequence length (longer inputs are truncated, as sentence-transformers does).
        threads: Intra-op threads (default: the cores this process may use).
    """

    def __init__(self, model_dir: Path, *, max_tokens: int, threads: int | None = None) -> None:
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        if not (model_dir / "tokenizer.json").is_file():
            raise ResourceMissing(f"{model_dir} has no tokenizer.json; use embedder.backend: torch")
        pooling = _read_json(model_dir / "1_Pooling" / "config.json")
        if pooling.get("pooling_mode_cls_token"):
            self._pool = "cls"
        elif pooling.get("pooling_mode_mean_tokens", True):
            self._pool = "mean"
        else:
            raise ResourceMissing(f"{model_dir}: only mean or CLS pooling runs under ONNX; use backend torch")
        try:
            import onnxruntime  # noqa: F401  (the export and the session need it)
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ResourceMissing(
                f"onnxruntime is not installed ({exc}); run `pip install onnxruntime` or use backend torch"
            ) from exc
        self._tok: Any = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tok.enable_truncation(max_tokens)
        self._tok.no_padding()  # `feeds_of` pads each batch to its longest member
        self._pad_id = self._tok.token_to_id("[PAD]") or 0
        self._open(export_onnx(model_dir), threads or usable_cores())

    def _open(self, path: Path, threads: int) -> None:
        """Load the exported graph into ONNX Runtime (a subclass runs it elsewhere)."""
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # ORT's memory pattern plans buffers per input shape and keeps them: with length-sorted batches every
        # batch has a new shape, and 512 chunks of 256 tokens left the process at ~1,030 MB against ~760 MB
        # without it, at the same speed and identical vectors (benchmarks/results/ingest.md, 2026-12-02)
        opts.enable_mem_pattern = False
        self._session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}

    def _hidden(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """The last hidden state of one batch."""
        return np.asarray(self._session.run(None, feeds)[0])

    def tokenize(self, texts: Sequence[str]) -> list[Any]:
        """Each text's encoding as the model reads it: truncated at `max_tokens`, not padded (its length is the
        text's token count, so a caller that sorts by length tokenizes once)."""
        return list(self._tok.encode_batch(list(texts)))

    def feeds_of(self, encodings: Sequence[Any]) -> dict[str, np.ndarray]:
        """The model's inputs for one batch of `tokenize`'s encodings, padded to the longest."""
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        types = np.zeros((len(encodings), width), dtype=np.int64)
        for row, e in enumerate(encodings):
            n = len(e.ids)
            ids[row, :n], mask[row, :n], types[row, :n] = e.ids, e.attention_mask, e.type_ids
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = types
        return feeds

    def feeds(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The model's inputs for `texts` (padded to the longest, truncated at `max_tokens`)."""
        return self.feeds_of(self.tokenize(texts))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One forward pass over `texts` (one batch; sort by length before calling to keep padding small)."""
        return self.encode_tokenized(self.tokenize(texts))

    def encode_tokenized(self, encodings: Sequence[Any]) -> np.ndarray:
        """`encode` of texts already tokenized by `tokenize`."""
        feeds = self.feeds_of(encodings)
        mask = feeds["attention_mask"]
        hidden = self._hidden(feeds)
        if self._pool == "cls":
            pooled = hidden[:, 0]
        else:
            m = mask[..., None].astype(np.float32)
            pooled = (hidden * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.asarray(pooled / np.clip(norms, 1e-12, None), dtype=np.float32)


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}
