"""Issue 15 on the real packaged encoder: a pretrained reranker loads from a local folder (as a hub model would
load by id), the int8 backend keeps its order, and `ragcli train embedder` trains, gates and records a verdict
that a config naming the model reads at startup. Plumbing on tiny data; quality is measured in benchmarks/."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragcli.cli import app
from ragcli.config import parse_config
from ragcli.retrieval.build import build_reranker
from ragcli.retrieval.cross_encoder_reranker import CrossEncoderReranker
from ragcli.types import Chunk, Hit

pytestmark = pytest.mark.integration

DOCS = [
    ("what do mitochondria do", "Mitochondria produce most of the cell's energy as ATP."),
    ("how do vaccines work", "Vaccines train the immune system to recognise a pathogen."),
    ("why is the sky blue", "Rayleigh scattering makes short blue wavelengths scatter more."),
    ("what causes tides", "The moon's gravity pulls the oceans and causes tides."),
    ("what is photosynthesis", "Plants turn light, water and carbon dioxide into sugar and oxygen."),
    ("how do earthquakes happen", "Tectonic plates slip along faults and release stored energy."),
    ("what is inflation", "Inflation is a general rise in prices that erodes purchasing power."),
    ("why do we sleep", "Sleep consolidates memory and clears waste from the brain."),
    ("what is dna", "DNA is the molecule that carries genetic instructions in living things."),
    ("how do magnets work", "Aligned electron spins in a material create a magnetic field."),
]


@pytest.fixture(scope="module")
def local_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny CrossEncoder saved to a folder, as a user would have a downloaded ms-marco/bge reranker."""
    from sentence_transformers import CrossEncoder

    from ragcli.resources import embedding_model_dir

    folder = tmp_path_factory.mktemp("pretrained") / "tiny-cross-encoder"
    CrossEncoder(str(embedding_model_dir()), num_labels=1).save(str(folder))
    return folder


def test_pretrained_reranker_loads_by_path_and_quantized_backends_keep_its_scores(
    local_cross_encoder: Path,
) -> None:
    hits = [Hit(Chunk(id=str(i), doc_id=f"d{i}", text=t, source="s"), 0.0) for i, (_, t) in enumerate(DOCS)]
    cfg = parse_config({"reranker": {"type": "cross_encoder", "model": str(local_cross_encoder), "top_n": 3}})
    rr = build_reranker(cfg)
    assert rr is not None
    out = rr.rerank("what do mitochondria do", hits)
    assert len(out.hits) == 3 and out.usage.input_tokens > 0
    fp32 = CrossEncoderReranker(str(local_cross_encoder)).score("q", [t for _, t in DOCS])
    int8 = CrossEncoderReranker(str(local_cross_encoder), backend="int8").score("q", [t for _, t in DOCS])
    assert all(0.0 <= s <= 1.0 for s in int8)
    assert max(abs(a - b) for a, b in zip(fp32, int8, strict=True)) < 0.05
    # ONNX Runtime: exported once beside the model, then quantized once per output channel
    onnx = CrossEncoderReranker(str(local_cross_encoder), backend="onnx").score("q", [t for _, t in DOCS])
    onnx8 = CrossEncoderReranker(str(local_cross_encoder), backend="onnx_int8").score(
        "q", [t for _, t in DOCS]
    )
    assert (local_cross_encoder / "model.fused.onnx").is_file() and (
        local_cross_encoder / "model.fused.int8.onnx"
    ).is_file()
    assert not list(local_cross_encoder.glob(".*onnx*"))  # no half-written or intermediate graph left behind
    assert max(abs(a - b) for a, b in zip(fp32, onnx, strict=True)) < 1e-4
    assert max(abs(a - b) for a, b in zip(fp32, onnx8, strict=True)) < 0.05
    # loaded once per process: a second reranker on the same folder shares the model
    a, b = CrossEncoderReranker(str(local_cross_encoder)), CrossEncoderReranker(str(local_cross_encoder))
    assert a.load() is b.load()


def test_train_embedder_gates_and_config_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps({"query": q, "passage": p, "label": 1}) for q, p in DOCS) + "\n")
    home = tmp_path / "home"
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(f"home: {home}\nretrieval:\n  mode: dense\n")
    result = CliRunner().invoke(
        app,
        ["train", "embedder", "--pairs", str(pairs), "--name", "tiny", "--batch-size", "4", "--holdout", "0.3",
         "--max-length", "64", "--config", str(cfg_file)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "deployment gate" in result.output and "re-index" in result.output
    card = json.loads((home / "embedders" / "tiny" / "ragcli_embedder.json").read_text())
    assert card["gate"]["queries"] == 3 and card["weights_sha"]
    # make the verdict a failure and check the startup warning
    card["gate"]["deployable"] = False
    (home / "embedders" / "tiny" / "ragcli_embedder.json").write_text(json.dumps(card))
    from ragcli.ingest.build import build_embedder

    cfg = parse_config(
        {"home": str(home), "embedder": {"type": "sentence_transformers", "model": "trained:tiny"}}
    )
    with caplog.at_level(logging.WARNING):
        emb = build_embedder(cfg.embedder, home=cfg.home_dir())
    assert "FAILED its deployment gate" in caplog.text
    assert emb.model_name.startswith("trained:tiny@") and emb.embed(["hello"]).vectors.shape == (1, 384)
