"""The ONNX Runtime encoder gives the packaged MiniLM's vectors (cosine >= 0.9999 to sentence-transformers')."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("sentence_transformers")

from ragcli.ingest.sentence_transformer_embedder import SentenceTransformerEmbedder

pytestmark = pytest.mark.integration

TEXTS = [
    "Short.",
    "A somewhat longer sentence about proteins binding to receptors in the cell membrane.",
    " ".join(["Long text that runs past the model's window of two hundred and fifty-six tokens."] * 40),
    "Ünïcödé and numbers 3.14159 and [brackets] (parens) — dashes.",
]


def test_onnx_vectors_agree_with_torch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGCLI_HOME", str(tmp_path))
    torch_emb = SentenceTransformerEmbedder(backend="torch")
    onnx_emb = SentenceTransformerEmbedder(backend="onnx")
    auto = SentenceTransformerEmbedder()
    assert auto.backend == "onnx" and torch_emb.backend == "torch"
    a, b = torch_emb.embed(TEXTS), onnx_emb.embed(TEXTS)
    cos = np.sum(a.vectors * b.vectors, axis=1)
    assert cos.min() >= 0.9999, cos
    assert a.usage.input_tokens == b.usage.input_tokens
    assert np.allclose(np.linalg.norm(b.vectors, axis=1), 1.0, atol=1e-5)
    # the export is cached: a second encoder loads without exporting again
    assert len(list((tmp_path / "onnx").rglob("model.onnx"))) == 1


def test_fastest_measures_the_bulk_backend_once_and_keeps_the_vectors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ragcli.ingest.backend_choice import CHOICE_FILE
    from ragcli.ingest.sentence_transformer_embedder import BULK_TEXTS

    monkeypatch.setenv("RAGCLI_HOME", str(tmp_path))
    texts = [f"{TEXTS[i % len(TEXTS)]} variant {i}" for i in range(BULK_TEXTS)]
    fast = SentenceTransformerEmbedder(backend="fastest")
    small = fast.embed(texts[:3])
    assert fast.bulk_backend == "onnx"  # a query-sized call measures nothing
    assert not (tmp_path / "onnx" / CHOICE_FILE).exists()
    SentenceTransformerEmbedder().embed(texts)  # the default, `auto`, never measures: least memory
    assert not (tmp_path / "onnx" / CHOICE_FILE).exists()
    bulk = fast.embed(texts)
    assert fast.bulk_backend in ("onnx", "torch") and (tmp_path / "onnx" / CHOICE_FILE).is_file()
    assert fast.backend == fast.bulk_backend  # one model in memory from then on
    assert np.allclose(fast.embed(texts[:3]).vectors, small.vectors, atol=1e-4)
    fresh = SentenceTransformerEmbedder(backend="fastest")  # a new process: a query stays on ONNX Runtime
    fresh.embed(texts[:3])
    assert fresh.backend == "onnx" and fresh._bulk is None  # no measurement, no torch model
    reference = SentenceTransformerEmbedder(backend="onnx").embed(texts)
    cos = np.sum(bulk.vectors * reference.vectors, axis=1)
    assert cos.min() >= 0.9999, cos.min()
    assert np.allclose(small.vectors, reference.vectors[:3], atol=1e-5)
