"""Reranker training on the packaged MiniLM encoder proves the loop (not quality: that is measured in
benchmarks/), and the trained model loads by `trained:NAME` through CrossEncoder and FlagReranker."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ragcli.cli import app
from ragcli.config import parse_config
from ragcli.errors import ResourceMissing
from ragcli.ingest.build import build_embedder
from ragcli.retrieval.build import build_reranker, build_store
from ragcli.retrieval.cross_encoder_reranker import CrossEncoderReranker
from ragcli.train.reranker_data import load_training_data
from ragcli.types import Chunk, Hit

pytestmark = pytest.mark.integration

PAIRS = [
    ("what do mitochondria do", "Mitochondria produce most of the cell's energy as ATP.", 1),
    ("what do mitochondria do", "The stock market closed higher on Friday.", 0),
    ("how do vaccines work", "Vaccines train the immune system to recognise a pathogen.", 1),
    ("how do vaccines work", "Paris is the capital of France.", 0),
    ("why is the sky blue", "Rayleigh scattering makes short blue wavelengths scatter more.", 1),
    ("why is the sky blue", "Bananas are rich in potassium.", 0),
    ("what causes tides", "The moon's gravity pulls the oceans and causes tides.", 1),
    ("what causes tides", "Python is a programming language.", 0),
]


@pytest.fixture
def pairs_file(tmp_path: Path) -> Path:
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps({"query": q, "passage": p, "label": y}) for q, p, y in PAIRS) + "\n")
    return path


def _hits(texts: list[str]) -> list[Hit]:
    return [Hit(Chunk(id=str(i), doc_id=f"d{i}", text=t, source="s"), 0.0) for i, t in enumerate(texts)]


def result_args(pairs_file: Path) -> list[str]:
    """`ragcli train reranker`'s arguments for the tiny model: 1 epoch, no mined negatives, no gate, JSON out."""
    return ["--pairs", str(pairs_file), "--name", "tiny", "--epochs", "1", "--max-length", "64", "--batch-size", "4",
            "--negatives", "0", "--holdout", "0", "--json"]  # fmt: skip


def test_train_load_by_name_and_rerank(pairs_file: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["train", "reranker", *result_args(pairs_file)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["pairs"] == 8 and report["positives"] == 4 and report["negatives_source"] == "labeled only"
    folder = Path(report["path"])
    assert folder.name == "tiny" and (folder / "ragcli_reranker.json").is_file()
    # a retrain under the same name drops what the back-ends derived from the old weights (exports, int8 models)
    from ragcli.retrieval.cross_encoder_backends import DERIVED_FILES

    for derived in DERIVED_FILES:
        (folder / derived).write_text("stale")
    again = runner.invoke(app, ["train", "reranker", *result_args(pairs_file)])
    assert again.exit_code == 0, again.output
    assert not [d for d in DERIVED_FILES if (folder / d).exists()]

    cfg = parse_config(
        {
            "reranker": {
                "type": "cross_encoder",
                "model": "trained:tiny",
                "top_n": 2,
                "min_score": 0.0,
                "dedupe_threshold": 0.9,
            }
        }
    )
    reranker = build_reranker(cfg)
    assert isinstance(reranker, CrossEncoderReranker)
    texts = [p for _, p, _ in PAIRS[:4]] + [PAIRS[0][1]]
    out = reranker.rerank("what do mitochondria do", _hits(texts))
    assert len(out.hits) == 2
    assert all(0.0 <= h.score <= 1.0 for h in out.hits)
    assert out.hits[0].score >= out.hits[1].score
    assert out.dropped_duplicates == 1, "the repeated passage is removed"
    assert out.usage.input_tokens > 0 and out.usage.usd == 0.0

    strict = CrossEncoderReranker("trained:tiny", top_n=5, min_score=1.01)
    assert strict.rerank("q", _hits(["a", "b"])).dropped_below_cutoff == 2

    if importlib.util.find_spec("FlagEmbedding") is None:
        pytest.skip("FlagEmbedding is not installed (pip install 'ragcli[flag]')")
    flag = build_reranker(parse_config({"reranker": {"type": "flag", "model": "trained:tiny", "top_n": 3}}))
    assert flag is not None
    flagged = flag.rerank("what do mitochondria do", _hits(texts[:4]))
    assert len(flagged.hits) == 3
    ce_scores = CrossEncoderReranker("trained:tiny", max_length=256).score("q x", ["a passage"])
    flag_scores = flag.score("q x", ["a passage"])  # type: ignore[attr-defined]
    assert flag_scores[0] == pytest.approx(ce_scores[0], abs=1e-3), "both runners read the same model"


def test_a_missing_hub_model_says_how_to_fix() -> None:
    reranker = CrossEncoderReranker("no-such-org/no-such-reranker")
    with pytest.raises(ResourceMissing) as info:
        reranker.rerank("q", _hits(["a"]))
    text = str(info.value)
    assert "reranker model 'no-such-org/no-such-reranker' could not be loaded" in text
    assert "ragcli train reranker" in text and "trained:NAME" in text


def test_hard_negatives_are_mined_from_the_users_index(pairs_file: Path) -> None:
    cfg = parse_config({"collection": "mine"})
    embedder = build_embedder(cfg.embedder)
    store = build_store(cfg)
    passages = [p for _, p, _ in PAIRS] + [
        "Cells use ATP made in mitochondria for energy (a copy-like passage)."
    ]
    chunks = [
        Chunk(id=f"00000000-0000-0000-0000-{i:012d}", doc_id=f"d{i}", text=t, source="s")
        for i, t in enumerate(passages)
    ]
    store.ensure_collection(embedder.dim, sparse=False, indexed_fields={})
    store.upsert(chunks, np.asarray(embedder.embed(passages).vectors))
    store.close()
    data = load_training_data(cfg, pairs_file=pairs_file, negatives_per_query=2)
    assert data.negatives_source == "mined from the index"
    mined = data.pairs[len(PAIRS) :]
    assert len(mined) == 8 and all(p.label == 0.0 for p in mined)
    positives = {(q, p) for q, p, y in PAIRS if y}
    assert not any((p.query, p.passage) in positives for p in mined), "a labeled positive is never a negative"
