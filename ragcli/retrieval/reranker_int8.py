"""A cross-encoder quantized to int8 by NNCF and run by OpenVINO (`reranker.backend: openvino_int8`).

ONNX Runtime's dynamic int8 (`onnx_int8`) reranks 20 SciFact candidates at 128 tokens in ~160-250 ms p50 on this
2-core CPU, with a Spearman of 0.975 to fp32 (benchmarks/results/retrieval_trained.md). NNCF's static
quantization (activation ranges from calibration pairs, SmoothQuant for BERT's outlier channels) lets OpenVINO run
the whole model in int8, attention's activation products included (the int8 embedder keeps those in fp32 for its
cosine; a ranking does not need them: the same Spearman, ~10 % faster).

Quantizing needs labeled or unlabeled (query, passage) pairs of the user's own kind, so it is a step of its own:
`ragcli train quantize-reranker --model NAME_OR_DIR --pairs pairs.jsonl` (the same JSONL as `ragcli train
reranker`; labels are not used). Half of the pairs calibrate, the other half check: the int8 model is kept only if
its scores' Spearman correlation with fp32's on the checked pairs is at least `MIN_SPEARMAN`. The model
(`model.int8.xml`) and the verdict (`ragcli_int8.json`) are written into the reranker's folder, and the backend
refuses a folder without an accepted one, saying how to make it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragcli.errors import InputError, ResourceMissing

log = logging.getLogger(__name__)

CARD = "ragcli_int8.json"
IR = "model.int8.xml"
MIN_PAIRS = 64
MAX_PAIRS = 512
MIN_SPEARMAN = 0.95
"""The lowest Spearman correlation between int8 and fp32 scores of the checked pairs the int8 model may reach."""


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


_CHARS_PER_TOKEN = 6
"""A passage is cut at the last space before `max_length * 6` characters before tokenizing: tokenizing the whole
of a long abstract only to keep its first hundred tokens took most of the tokenizer's time (20 SciFact pairs at
128 tokens: ~9 ms instead of ~16). The ids stay those of the whole passage: the tokenizer splits at spaces first,
so the whole words before the cut give the same tokens, and truncation keeps the passage's first
`max_length - query - specials` tokens when the query takes at most half the window. A pair that the cut left
short of `max_length`, or a longer query (truncation then depends on which side is longer), is tokenized whole."""


def _cut(passage: str, limit: int) -> str:
    if len(passage) <= limit:
        return passage
    space = passage.rfind(" ", 0, limit)
    return passage[:space] if space > 0 else passage


def _feeds(
    tok: Any, pairs: Sequence[tuple[str, str]], max_length: int, wanted: set[str]
) -> dict[str, np.ndarray]:
    queries = [q for q, _ in pairs]
    whole = [p for _, p in pairs]
    kw: dict[str, Any] = {
        "padding": True,
        "truncation": True,
        "max_length": max_length,
        "return_tensors": "np",
    }
    window = max_length - tok.num_special_tokens_to_add(pair=True)
    longest_query = max(len(tok(q, add_special_tokens=False)["input_ids"]) for q in set(queries))
    if longest_query * 2 <= window:
        passages = [_cut(p, max_length * _CHARS_PER_TOKEN) for p in whole]
        enc = tok(queries, passages, **kw)
        short = enc["attention_mask"].sum(axis=1) < max_length
        if not any(short[i] and len(passages[i]) < len(p) for i, p in enumerate(whole)):
            return {k: np.asarray(v, dtype=np.int64) for k, v in enc.items() if k in wanted}
    enc = tok(queries, whole, **kw)
    return {k: np.asarray(v, dtype=np.int64) for k, v in enc.items() if k in wanted}


def quantize_cross_encoder(
    folder: Path, pairs: Sequence[tuple[str, str]], *, max_length: int = 128
) -> dict[str, Any]:
    """Quantize the cross-encoder in `folder` on half of `pairs`, check it on the other half; write the int8
    model (when it passes) and the verdict into the folder; return the verdict.

    Raises:
        InputError: fewer than `MIN_PAIRS` pairs.
        ResourceMissing: openvino or nncf not installed, or `folder` holds no model.
    """
    if len(pairs) < MIN_PAIRS:
        raise InputError(
            f"quantizing a reranker needs at least {MIN_PAIRS} (query, passage) pairs, got {len(pairs)}"
        )
    if not (folder / "config.json").is_file():
        raise ResourceMissing(f"{str(folder)!r} holds no cross-encoder (no config.json); give a model folder")
    try:
        import nncf
        import onnxruntime as ort
        import openvino as ov
    except ImportError as exc:
        raise ResourceMissing(
            f"quantizing a reranker needs openvino and nncf ({exc}); run `pip install 'ragcli[openvino]'`"
        ) from exc
    from transformers import AutoTokenizer

    from ragcli.ingest.openvino_encoder import quantize_int8
    from ragcli.retrieval.cross_encoder_backends import export_eager

    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(str(folder))
    eager = folder / ".model.int8-source.onnx"
    export_eager(str(folder), tok, None, eager)
    try:
        reference = ort.InferenceSession(str(eager), providers=["CPUExecutionProvider"])
        wanted = {i.name for i in reference.get_inputs()}
        used = list(pairs)[:MAX_PAIRS]
        fit, check = used[0::2], used[1::2]
        batches = [_feeds(tok, fit[i : i + 8], max_length, wanted) for i in range(0, len(fit), 8)]
        quantized = quantize_int8(eager, batches, fp32="none")
        request = ov.Core().compile_model(quantized, "CPU").create_infer_request()
        fp32, int8 = [], []
        for i in range(0, len(check), 16):
            feeds = _feeds(tok, check[i : i + 16], max_length, wanted)
            fp32.append(reference.run(None, feeds)[0][:, 0])
            int8.append(np.asarray(request.infer(feeds)[0])[:, 0].copy())
        rho = _spearman(np.concatenate(int8), np.concatenate(fp32))
        accepted = rho >= MIN_SPEARMAN
        if accepted:
            ov.save_model(quantized, str(folder / IR))
    finally:
        eager.unlink(missing_ok=True)
    card = {
        "accepted": bool(accepted),
        "spearman": round(rho, 4),
        "min_spearman_required": MIN_SPEARMAN,
        "calibration_pairs": len(fit),
        "checked_pairs": len(check),
        "max_length": max_length,
        "fp32_products": "none",
        "openvino": ov.__version__,
        "nncf": nncf.__version__,
        "seconds": round(time.perf_counter() - t0, 1),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (folder / CARD).write_text(json.dumps(card, indent=1) + "\n")
    return card


def openvino_scorer(folder: Path, tok: Any, max_length: int, batch_size: int) -> Any:
    """(firsts, seconds) -> logits, from the folder's accepted int8 model."""
    card_path = folder / CARD
    card = json.loads(card_path.read_text()) if card_path.is_file() else None
    if card is None or not (folder / IR).is_file():
        if card is not None and not card.get("accepted"):
            raise ResourceMissing(
                f"the int8 model of {str(folder)!r} failed its check (Spearman {card.get('spearman')} with fp32 < "
                f"{MIN_SPEARMAN}); use reranker backend onnx_int8 or onnx"
            )
        raise ResourceMissing(
            f"reranker backend openvino_int8 needs the model quantized once: run `ragcli train quantize-reranker "
            f"--model {folder} --pairs pairs.jsonl` (query/passage pairs of your own kind), or use backend onnx_int8"
        )
    try:
        import openvino as ov
    except ImportError as exc:
        raise ResourceMissing(
            f"reranker backend openvino_int8 needs openvino ({exc}); run `pip install 'ragcli[openvino]'`"
        ) from exc
    from ragcli.ingest.openvino_encoder import RUNTIME_CACHE

    compiled = ov.Core().compile_model(
        str(folder / IR), "CPU", {"PERFORMANCE_HINT": "LATENCY", **RUNTIME_CACHE}
    )
    request = compiled.create_infer_request()
    wanted = {i.get_any_name() for i in compiled.inputs}

    def score(firsts: Sequence[str], seconds: Sequence[str]) -> list[float]:
        out: list[float] = []
        for i in range(0, len(seconds), batch_size):
            feeds = _feeds(
                tok,
                list(zip(firsts[i : i + batch_size], seconds[i : i + batch_size], strict=True)),
                max_length,
                wanted,
            )
            out += np.asarray(request.infer(feeds)[0])[:, 0].astype(float).tolist()
        return out

    log.info("loaded cross-encoder %s (openvino_int8)", folder)
    return score
