"""The embedding model quantized to int8 by NNCF and run by OpenVINO: about twice torch's speed on this CPU,
with vectors that stay within cosine 0.99 of fp32, checked on the user's own texts before it is used.

Why not ONNX Runtime's int8: its dynamic quantization (weights int8, activations quantized per call) was 1.35x its
fp32 at a minimum cosine of 0.987 on SciFact chunks, and 1.24x at 0.992 with the sensitive layers left in fp32
(benchmarks/results/ingest.md). NNCF's static quantization (activation ranges from calibration texts, SmoothQuant
for BERT's outlier channels) lets OpenVINO run int8 matrix products end to end. Of attention's two products
between activations, Q·Kᵀ runs in int8 too and the softmax weights times V stays in fp32: on 384 SciFact
abstracts both in fp32 kept the minimum cosine at 0.9947, Q·Kᵀ in int8 0.9949 at 7-10 % less time, and the
weights·V product in int8 0.986 (a softmax's small weights do not survive one int8 scale).

The model is quantized once per machine and home, on the first batch of at least `MIN_CALIBRATION` texts the
embedder is given (an ingest's chunks: the user's own kind of text), then checked: half of those texts calibrate,
the other half are embedded by the int8 model and by ONNX Runtime in fp32, and the int8 model is used only if
every vector's cosine to its fp32 twin is at least `MIN_COSINE`. The verdict is kept in `model.int8.json` beside
the export; a model that fails is never used (the encoder runs ONNX Runtime fp32 instead, with a warning). Needs
`pip install 'ragcli[openvino]'` (openvino, and nncf for the one-time quantization).
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragcli.errors import ResourceMissing
from ragcli.ingest.onnx_encoder import OnnxEncoder

log = logging.getLogger(__name__)

MIN_CALIBRATION = 128
"""Texts needed to quantize (half calibrate, half check); fewer, and the encoder runs fp32 until a larger batch."""
MAX_CALIBRATION = 256
MIN_COSINE = 0.99
"""The lowest cosine between an int8 and an fp32 vector of the same text that the int8 model may reach."""
RUNTIME_CACHE = {"CPU_RUNTIME_CACHE_CAPACITY": 64}
"""OpenVINO keeps compiled kernels per input shape (5,000 shapes by default), and length-sorted batches bring a new
shape almost every call: the 20 MB file's ingest peaked at 1,911 MB with the default (ONNX Runtime fp32: 1,407).
With 64 shapes kept, 240 batches of random shapes ran as fast (85.7 s vs 86.6 s) at 1,037 MB instead of 1,730
(0 kept: 978 MB, 90.9 s)."""
_CARD = "model.int8.json"
_IR = "model.int8.xml"
RECIPE = 2
"""The quantization recipe tried first (2: Q·Kᵀ in int8 too; 1, tried when 2 fails its check: both attention
products in fp32). A card made before recipe 2 existed is replaced on the next batch large enough to quantize;
until then its accepted model keeps running."""
_FP32_PRODUCTS = {1: "attention", 2: "softmax"}


def _before_recipe_2(card: dict[str, Any]) -> bool:
    """A card made before recipe 2 existed (not one where recipe 2 was tried and recipe 1 kept)."""
    return card.get("recipe", 1) < RECIPE and "min_cosine_tried" not in card


def activation_matmuls(onnx_path: Path, *, softmax_only: bool = False) -> list[str]:
    """Names of the MatMul nodes that multiply two activations (attention's Q·Kᵀ and weights·V), not a weight;
    with `softmax_only`, only those fed by a softmax (weights·V), through any masking or cast on the way."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    weights = {i.name for i in graph.initializer}
    consts = {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    producer = {o: n for n in graph.node for o in n.output}

    def from_softmax(name: str, depth: int = 3) -> bool:
        node = producer.get(name)
        if node is None or depth < 0:
            return False
        if node.op_type == "Softmax":
            return True
        passes = ("Where", "Cast", "Dropout", "Identity", "Mul", "Reshape")
        return node.op_type in passes and any(from_softmax(i, depth - 1) for i in node.input)

    return [
        n.name
        for n in graph.node
        if n.op_type == "MatMul"
        and not any(i in weights or i in consts for i in n.input)
        and (not softmax_only or any(from_softmax(i) for i in n.input))
    ]


def quantize_int8(onnx_path: Path, batches: Sequence[dict[str, np.ndarray]], *, fp32: str = "softmax") -> Any:
    """NNCF's static int8 of a BERT-family graph (the embedder's or a cross-encoder's), calibrated on `batches` of
    its inputs: SmoothQuant, one scale per channel. Needs nncf.

    `fp32` names attention's products between activations that stay in fp32: `softmax` (the weights times V: what
    the embedder needs to keep cosine >= 0.99, see the module's docstring), `attention` (Q·Kᵀ too: recipe 1) or
    `none` (a cross-encoder's ranking keeps the same Spearman on SciFact with every product in int8, ~10 % faster).
    """
    if fp32 not in ("softmax", "attention", "none"):
        raise ValueError(f"fp32 must be softmax, attention or none, got {fp32!r}")
    import nncf
    import openvino as ov

    nncf.set_log_level(logging.ERROR)  # its per-layer notes are not the user's business
    with contextlib.redirect_stdout(sys.stderr):  # nor its progress bars on stdout (`--json` output)
        model = nncf.quantize(
            ov.Core().read_model(str(onnx_path)),
            nncf.Dataset(list(batches)),
            model_type=nncf.ModelType.TRANSFORMER,
            preset=nncf.QuantizationPreset.MIXED,
            subset_size=len(batches),
            ignored_scope=nncf.IgnoredScope(
                names=[] if fp32 == "none" else activation_matmuls(onnx_path, softmax_only=fp32 == "softmax"),
                validate=False,
            ),
        )
    # NNCF's statistics pass leaves cycles that hold OpenVINO models and requests: free them here, in one known
    # place, not at whatever allocation of the caller's next triggers a collection (one such crashed a CI run)
    gc.collect()
    return model


def int8_status(model_dir: Path) -> str:
    """What the int8 model of `model_dir` is on this machine (`ragcli doctor`).

    Raises:
        ResourceMissing: not made yet, or made and refused by its check: the detail says what happens instead.
    """
    from ragcli.ingest.onnx_encoder import export_dir

    card_path = export_dir(model_dir) / _CARD
    if not card_path.is_file():
        raise ResourceMissing(
            f"not quantized yet on this machine: the first ingest of >= {MIN_CALIBRATION} chunks with "
            "embedder.backend openvino_int8 makes it (~30-50 s, once)"
        )
    card = json.loads(card_path.read_text())
    if not card.get("accepted"):
        raise ResourceMissing(
            f"refused by its check (min cosine {card.get('min_cosine')} < {MIN_COSINE}): openvino_int8 runs fp32; "
            f"delete {card_path} to try again"
        )
    stale = " (made before recipe 2; the next large ingest tries it)" if _before_recipe_2(card) else ""
    return (
        f"recipe {card.get('recipe', 1)}, min cosine to fp32 {card.get('min_cosine')} on "
        f"{card.get('checked_texts')} texts, made {card.get('created')}{stale}"
    )


class OpenVinoInt8Encoder(OnnxEncoder):
    """`OnnxEncoder`'s tokenizer and pooling over the int8 OpenVINO model (see the module's docstring).

    Args:
        calibration: texts to quantize on when no verdict is cached yet (an ingest's first batch).

    `int8` says whether the int8 model runs; when it does not (too few texts to quantize yet, or the check failed),
    ONNX Runtime runs the fp32 graph and `needs_calibration` says whether a larger batch would quantize.
    """

    def __init__(
        self,
        model_dir: Path,
        *,
        max_tokens: int,
        calibration: Sequence[str] = (),
        threads: int | None = None,
    ) -> None:
        self._calibration = list(calibration)
        self._request: Any = None
        self.int8 = False
        self.needs_calibration = False
        super().__init__(model_dir, max_tokens=max_tokens, threads=threads)

    def _open(self, path: Path, threads: int) -> None:
        super()._open(path, threads)  # ONNX Runtime fp32: the reference, and the fallback
        try:
            import openvino as ov
        except ImportError as exc:
            raise ResourceMissing(
                f"embedder backend openvino_int8 needs openvino ({exc}); run `pip install 'ragcli[openvino]'` "
                "or use backend onnx"
            ) from exc
        card_path = path.parent / _CARD
        card = json.loads(card_path.read_text()) if card_path.is_file() else None
        if card is not None and card.get("accepted") and not (path.parent / _IR).is_file():
            card = None  # the model was deleted: quantize again
        if card is not None and _before_recipe_2(card) and len(self._calibration) >= MIN_CALIBRATION:
            card = None  # made before recipe 2 was tried: try it (RECIPE)
        if card is None:
            if len(self._calibration) < MIN_CALIBRATION:
                self.needs_calibration = True
                log.info(
                    "int8 embedding model not quantized yet: fp32 until a batch of %d texts", MIN_CALIBRATION
                )
                return
            card = self._quantize(path, threads)
            card_path.write_text(json.dumps(card, indent=1) + "\n")
        if not card.get("accepted"):
            log.warning(
                "the int8 embedding model failed its check on this machine (min cosine %.4f < %.2f, %s); "
                "running fp32 (delete it to retry)",
                card.get("min_cosine", 0.0),
                MIN_COSINE,
                card_path,
            )
            return
        self._request = self._compile(ov, path.parent / _IR, threads)
        self._session = None  # the fp32 reference is no longer needed
        self.int8 = True

    @staticmethod
    def _compile(ov: Any, ir: Path, threads: int) -> Any:
        core = ov.Core()
        compiled = core.compile_model(
            str(ir), "CPU", {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads, **RUNTIME_CACHE}
        )
        return compiled.create_infer_request()

    def _hidden(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        if self._request is None:
            return super()._hidden(feeds)
        # the output's own buffer, not a copy: `encode` pools it before the next inference overwrites it
        return np.asarray(self._request.infer(feeds, share_inputs=True, share_outputs=True)[0])

    def _quantize(self, path: Path, threads: int) -> dict[str, Any]:
        """Quantize on half of the calibration texts, check on the other half; the verdict as a card."""
        try:
            import nncf
            import openvino as ov
        except ImportError as exc:
            raise ResourceMissing(
                f"quantizing the embedding model needs nncf ({exc}); run `pip install 'ragcli[openvino]'`"
            ) from exc
        t0 = time.perf_counter()
        texts = self._calibration[:MAX_CALIBRATION]
        fit, check = texts[0::2], texts[1::2]
        batches = [self.feeds(fit[i : i + 8]) for i in range(0, len(fit), 8)]
        reference = np.vstack([self.encode(check[i : i + 16]) for i in range(0, len(check), 16)])
        ir = path.parent / _IR
        tried: dict[str, float] = {}
        for recipe in (RECIPE, 1):  # the faster first, the safer if it fails
            fp32 = _FP32_PRODUCTS[recipe]
            ov.save_model(quantize_int8(path, batches, fp32=fp32), str(ir))
            self._request = self._compile(ov, ir, threads)
            try:
                got = np.vstack([self.encode(check[i : i + 16]) for i in range(0, len(check), 16)])
            finally:
                self._request = None
            cos = (got * reference).sum(1)
            tried[fp32] = round(float(cos.min()), 5)
            if cos.min() >= MIN_COSINE:
                break
        card = {
            "accepted": bool(cos.min() >= MIN_COSINE),
            "recipe": recipe,
            "fp32_products": fp32,
            "min_cosine_tried": tried,
            "min_cosine": round(float(cos.min()), 5),
            "mean_cosine": round(float(cos.mean()), 5),
            "calibration_texts": len(fit),
            "checked_texts": len(check),
            "min_cosine_required": MIN_COSINE,
            "openvino": ov.__version__,
            "nncf": nncf.__version__,
            "seconds": round(time.perf_counter() - t0, 1),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        log.warning(
            "quantized the embedding model to int8 once in %.0fs: min cosine to fp32 %.4f on %d texts (%s)",
            card["seconds"],
            card["min_cosine"],
            len(check),
            "used" if card["accepted"] else "not used: below 0.99",
        )
        return card
