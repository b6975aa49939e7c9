"""The int8 embedding back-end: quantized once on the user's own texts, used only where it keeps cosine >= 0.99 to
fp32, fp32 until then; one verdict per model, remembered beside the export."""

from __future__ import annotations

import gc
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")
pytest.importorskip("nncf")

from ragcli.config import parse_config
from ragcli.errors import InputError, ResourceMissing
from ragcli.ingest.openvino_encoder import (
    MIN_CALIBRATION,
    RECIPE,
    OpenVinoInt8Encoder,
    activation_matmuls,
)
from ragcli.ingest.sentence_transformer_embedder import SentenceTransformerEmbedder

pytestmark = pytest.mark.integration

TEXTS_FILE = Path(__file__).with_name("int8_texts.txt")


def _sentences() -> list[str]:
    """Real text of every length, prose, lists and tables: 235 sentences of the README and the results as they
    were on 2026-12-03, one per line (a fixed file, so that editing the docs never moves the calibration)."""
    return [line for line in TEXTS_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]


TEXTS = _sentences()


_QUANTIZE = """
import sys
from ragcli.ingest.sentence_transformer_embedder import SentenceTransformerEmbedder
texts = [line for line in open(sys.argv[1], encoding="utf-8").read().splitlines() if line.strip()]
emb = SentenceTransformerEmbedder(backend="openvino_int8")
emb.embed(texts[: int(sys.argv[2])])
sys.exit(0 if emb._model.int8 else 3)
"""


@pytest.fixture(scope="module")
def quantized(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home where the packaged model was exported and quantized once (on the first 128 sentences).

    In its own process, as a user's first large ingest does it: NNCF's garbage (graphs that hold OpenVINO models
    and requests) is never collected inside the test process, whose later collection crashed one CI run.
    """
    home = tmp_path_factory.mktemp("int8-home")
    env = {**os.environ, "RAGCLI_HOME": str(home)}
    args = [sys.executable, "-c", _QUANTIZE, str(TEXTS_FILE), str(MIN_CALIBRATION)]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return home


def _export_dir(home: Path) -> Path:
    return next((home / "onnx").rglob("model.onnx")).parent


def _fresh_home(quantized: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, keep_int8: bool) -> Path:
    """A home holding the cached export (and the int8 model and its verdict when `keep_int8`)."""
    home = tmp_path / "home"
    src = _export_dir(quantized)
    dst = home / src.relative_to(quantized)
    shutil.copytree(src, dst, ignore=None if keep_int8 else shutil.ignore_patterns("model.int8.*"))
    monkeypatch.setenv("RAGCLI_HOME", str(home))
    return dst


def test_quantized_once_and_close_to_fp32(
    quantized: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _fresh_home(quantized, tmp_path, monkeypatch, keep_int8=True)
    card = json.loads((folder / "model.int8.json").read_text())
    assert card["accepted"] and card["min_cosine"] >= 0.99
    assert card["calibration_texts"] == card["checked_texts"] == MIN_CALIBRATION // 2
    names = activation_matmuls(folder / "model.onnx")
    assert len(names) == 12 and all("attention" in n for n in names)  # Q·Kᵀ and weights·V of 6 layers
    softmax = activation_matmuls(folder / "model.onnx", softmax_only=True)
    assert len(softmax) == 6 and set(softmax) < set(names)  # weights·V only: it stays fp32
    assert card["recipe"] == RECIPE and card["fp32_products"] == "softmax"
    int8 = SentenceTransformerEmbedder(backend="openvino_int8")
    fp32 = SentenceTransformerEmbedder(backend="onnx")
    other = TEXTS[MIN_CALIBRATION:]  # texts it was not quantized on
    a, b = int8.embed(other), fp32.embed(other)
    assert int8._model.int8 and int8.backend == "openvino_int8"  # the cached model: no second quantization
    cos = np.sum(a.vectors * b.vectors, axis=1)
    assert cos.min() >= 0.98 and cos.mean() >= 0.995, (cos.min(), cos.mean())
    assert a.usage.input_tokens == b.usage.input_tokens
    assert np.allclose(np.linalg.norm(a.vectors, axis=1), 1.0, atol=1e-4)


def test_fp32_until_a_batch_large_enough_to_quantize(
    quantized: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _fresh_home(quantized, tmp_path, monkeypatch, keep_int8=False)
    emb = SentenceTransformerEmbedder(backend="openvino_int8")
    fp32 = SentenceTransformerEmbedder(backend="onnx")
    query = emb.embed(["What is the hotel limit in Paris?"])  # a query first: nothing to calibrate on
    assert not emb._model.int8 and emb._model.needs_calibration
    assert np.allclose(query.vectors, fp32.embed(["What is the hotel limit in Paris?"]).vectors, atol=1e-5)
    assert not (folder / "model.int8.json").exists()
    gc.collect()
    emb.embed(TEXTS[:MIN_CALIBRATION])  # an ingest's batch: quantized now, in the same process
    assert emb._model.int8 and json.loads((folder / "model.int8.json").read_text())["accepted"]
    # NNCF's cycles (about 90k objects, OpenVINO requests among them) were collected inside the quantization,
    # not left for the caller's next allocation to free in whatever order (a native destructor crashed CI there)
    assert not _native_garbage()


def _native_garbage() -> list[str]:
    """The OpenVINO and NNCF objects that only a garbage collection would free now."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        return [
            type(o).__module__ for o in gc.garbage if type(o).__module__.split(".")[0] in ("nncf", "openvino")
        ]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.collect()


def test_a_model_that_failed_its_check_is_never_used(
    quantized: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    folder = _fresh_home(quantized, tmp_path, monkeypatch, keep_int8=True)
    card = json.loads((folder / "model.int8.json").read_text())
    (folder / "model.int8.json").write_text(json.dumps({**card, "accepted": False, "min_cosine": 0.97}))
    with caplog.at_level(logging.WARNING):
        emb = SentenceTransformerEmbedder(backend="openvino_int8")
        got = emb.embed(TEXTS[:MIN_CALIBRATION])
    assert (
        isinstance(emb._model, OpenVinoInt8Encoder)
        and not emb._model.int8
        and not emb._model.needs_calibration
    )
    assert "failed its check" in caplog.text and "0.9700" in caplog.text
    want = SentenceTransformerEmbedder(backend="onnx").embed(TEXTS[:MIN_CALIBRATION])
    assert np.allclose(got.vectors, want.vectors, atol=1e-5)  # fp32, not the rejected int8 model


def test_config_names_the_backend() -> None:
    cfg = parse_config({"embedder": {"type": "sentence_transformers", "backend": "openvino_int8"}})
    assert cfg.embedder.backend == "openvino_int8"
    with pytest.raises(InputError, match="openvino_int8"):
        SentenceTransformerEmbedder(backend="int8")
    with pytest.raises(ResourceMissing, match="needs a local model folder"):
        SentenceTransformerEmbedder("some-org/some-model", backend="openvino_int8").embed(["a question"])
