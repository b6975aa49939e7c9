"""Fast CPU backends for a cross-encoder, loaded once per process: torch fp32, torch int8, ONNX Runtime fp32
and int8.

A reranker re-scores ~20 candidates per query, so its latency is one forward pass over 20 (query, passage)
pairs. On a CPU the Linear layers dominate it; dynamic int8 quantization of those layers (weights int8,
activations quantized on the fly) cuts that time roughly in half for MiniLM-sized models with scores that keep
the order (measured in benchmarks/results/retrieval_trained.md: Spearman and top-5 agreement with fp32).
ONNX Runtime runs the exported graph; it exports once, next to the model, with eager attention fused by ONNX
Runtime's transformer optimizer (`model.fused.onnx`), and `onnx_int8` quantizes that graph once
(`model.fused.int8.onnx`, one scale per output channel: on SciFact pairs Spearman 0.97 with fp32 where torch's
per-tensor int8 gives 0.88).

Loaded models are cached per process by (folder, backend, max_length): every `Stages` and every reranker
object naming the same model shares one copy.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from ragcli.errors import ResourceMissing

log = logging.getLogger(__name__)

Backend = Literal["torch", "int8", "onnx", "onnx_int8", "openvino_int8"]
BACKENDS: tuple[str, ...] = ("torch", "int8", "onnx", "onnx_int8", "openvino_int8")
Scorer = Callable[[str, Sequence[str]], list[float]]
"""(query, passages) -> one logit per passage."""
PairScorer = Callable[[Sequence[str], Sequence[str]], list[float]]
"""(first texts, second texts) -> one logit per pair (the answer cache's verifier scores question pairs)."""

DERIVED_FILES = (
    "model.onnx",
    "model.int8.onnx",
    "model.fused.onnx",
    "model.fused.int8.onnx",
    "model.int8.xml",
    "model.int8.bin",
    "ragcli_int8.json",
)
"""What the back-ends derive from a model folder's weights, once: stale when the weights change (a retrain)."""

_LOADED: dict[tuple[str, str, int, int, str], tuple[Any, PairScorer]] = {}
_LOCK = threading.Lock()


def load_pair_scorer(
    path: str,
    backend: str,
    max_length: int,
    batch_size: int = 32,
    device: str = "cpu",
    *,
    shared: bool = True,
) -> tuple[Any, PairScorer]:
    """(tokenizer, pair scorer) for the model folder or hub id `path`, loaded once per process.

    `shared=False` loads a private copy (for a model that is still being written, such as a verifier calibrated
    right after training: a shared copy of that path would outlive a retrain).
    """
    if not shared:
        return _load(path, backend, max_length, batch_size, device)
    key = (path, backend, max_length, batch_size, device)
    with _LOCK:
        if key not in _LOADED:
            _LOADED[key] = _load(path, backend, max_length, batch_size, device)
        return _LOADED[key]


def load_scorer(
    path: str, backend: str, max_length: int, batch_size: int = 32, device: str = "cpu"
) -> tuple[Any, Scorer]:
    """(tokenizer, scorer of one query against many passages) for `path`, loaded once per process."""
    tok, pairs = load_pair_scorer(path, backend, max_length, batch_size, device)

    def score(query: str, texts: Sequence[str]) -> list[float]:
        return pairs([query] * len(texts), texts)

    return tok, score


def _load(path: str, backend: str, max_length: int, batch_size: int, device: str) -> tuple[Any, PairScorer]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    if backend == "openvino_int8":
        from ragcli.retrieval.reranker_int8 import openvino_scorer

        return tok, openvino_scorer(Path(path), tok, max_length, batch_size)
    model = AutoModelForSequenceClassification.from_pretrained(path).eval().to(device)
    if backend == "int8":
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)  # type: ignore[no-untyped-call]
    if backend in ("onnx", "onnx_int8"):
        return tok, _onnx_scorer(path, tok, model, max_length, batch_size, int8=backend == "onnx_int8")

    def score(firsts: Sequence[str], seconds: Sequence[str]) -> list[float]:
        out: list[float] = []
        with torch.inference_mode():
            for i in range(0, len(seconds), batch_size):
                enc = tok(
                    list(firsts[i : i + batch_size]),
                    list(seconds[i : i + batch_size]),
                    padding=True,
                    truncation=True,
                    max_length=max_length,
                    return_tensors="pt",
                ).to(device)
                out += model(**enc).logits[:, 0].float().tolist()
        return out

    log.info("loaded cross-encoder %s (%s)", path, backend)
    return tok, score


def _onnx_scorer(
    path: str, tok: Any, model: Any, max_length: int, batch_size: int, *, int8: bool = False
) -> PairScorer:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ResourceMissing(
            f"reranker backend 'onnx' needs onnxruntime ({exc}); run `pip install onnxruntime`, or use "
            "backend: int8 (no extra package)"
        ) from exc
    import numpy as np

    folder = Path(path)
    if not folder.is_dir():
        raise ResourceMissing(
            f"reranker backend 'onnx' needs a local model folder, got {path!r}; download it to a folder, or use "
            "int8 or torch"
        )
    onnx_file = folder / "model.fused.onnx"
    if not onnx_file.is_file():
        _export_fused(path, tok, model, onnx_file)
    if int8:
        onnx_file = _quantized(onnx_file)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(onnx_file), opts, providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}

    def score(firsts: Sequence[str], seconds: Sequence[str]) -> list[float]:
        out: list[float] = []
        for i in range(0, len(seconds), batch_size):
            enc = tok(
                list(firsts[i : i + batch_size]),
                list(seconds[i : i + batch_size]),
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="np",
            )
            feed = {k: np.asarray(v, dtype=np.int64) for k, v in enc.items() if k in wanted}
            out += session.run(["logits"], feed)[0][:, 0].astype(float).tolist()
        return out

    log.info("loaded cross-encoder %s (%s)", path, "onnx_int8" if int8 else "onnx")
    return score


def export_eager(path: str, tok: Any, model: Any | None, target: Path) -> Any:
    """Export the model with eager attention (the graph ONNX Runtime's optimizer and NNCF recognise) to `target`;
    returns the exported model's config. `model`: the one already loaded, exported as it is where the model class
    has no eager choice (`None`: loaded then)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    try:
        export_model = AutoModelForSequenceClassification.from_pretrained(
            path, attn_implementation="eager"
        ).eval()
    except (TypeError, ValueError):  # a model class without the choice: its default attention
        export_model = model
        if export_model is None:
            export_model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    enc = tok(["q"], ["p"], return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in enc]
    axes = {n: {0: "batch", 1: "seq"} for n in names}
    torch.onnx.export(
        export_model,
        tuple(enc[n] for n in names),
        str(target),
        input_names=names,
        output_names=["logits"],
        dynamic_axes={**axes, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    return export_model.config


def _export_fused(path: str, tok: Any, model: Any, target: Path) -> None:
    """Export the model with eager attention and let ONNX Runtime's transformer optimizer fuse it.

    The eager graph is the one the optimizer recognises: it fuses the attention, the embeddings' layer norm, the
    residual layer norms and the GELUs into single kernels (torch's SDPA export leaves them as dozens of small
    ops). Same fp32 scores; measured side by side on SciFact pairs at 128 tokens, 1.11x faster in fp32 and 1.13x
    in int8 (benchmarks/results/retrieval_trained.md). An architecture the optimizer cannot fuse keeps the plain
    eager graph.
    """
    eager = target.with_name(f".{target.stem}.eager.onnx")
    cfg = export_eager(path, tok, model, eager)
    tmp = target.with_name(f".{target.name}.part")
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        optimized = optimize_model(
            str(eager),
            model_type="bert",
            num_heads=int(getattr(cfg, "num_attention_heads", 0) or 0),
            hidden_size=int(getattr(cfg, "hidden_size", 0) or 0),
        )
        optimized.save_model_to_file(str(tmp))
    except Exception as exc:  # an architecture the optimizer does not know: the unfused graph still runs
        log.info("ONNX Runtime's optimizer could not fuse %s (%s); using the plain graph", path, exc)
        eager.replace(tmp)
    tmp.replace(target)
    eager.unlink(missing_ok=True)


def _quantized(onnx_file: Path) -> Path:
    """`<graph>.int8.onnx` beside the exported graph, made once: ONNX Runtime's dynamic int8 quantization with one
    scale per output channel, which keeps the fp32 order far better than one scale per tensor (torch's `int8`)."""
    target = onnx_file.with_name(f"{onnx_file.stem}.int8.onnx")
    if not target.is_file():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        tmp = target.with_name(f".{target.name}.part")
        quantize_dynamic(
            str(onnx_file),
            str(tmp),
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=False,
            extra_options={"DefaultTensorType": 1},  # FLOAT: the exported graph's shape inference leaves gaps
        )
        tmp.replace(target)
    return target
