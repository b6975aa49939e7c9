"""`ragcli eval retrieval` end to end on a small slice of SciFact with the real MiniLM: metrics, index reuse,
hybrid mode, and the CLI's JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragcli.cli import app
from ragcli.config import parse_config
from ragcli.eval.beir import load_corpus, load_qrels, load_queries
from ragcli.eval.retrieval_eval import evaluate_retrieval

pytestmark = pytest.mark.integration


@pytest.fixture
def mini_beir(data_dir: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    """Six judged test queries, their relevant documents and 24 others, written as BEIR files under tmp."""
    src = data_dir / "scifact_beir"
    corpus, queries, qrels = (
        load_corpus(src / "corpus.jsonl"),
        load_queries(src / "queries.jsonl"),
        load_qrels(src / "qrels" / "test.tsv"),
    )
    qids = sorted(q for q in qrels if q in queries)[:6]
    keep = {d for q in qids for d in qrels[q]} | set(list(corpus)[:24])
    out = tmp_path / "beir"
    out.mkdir()
    with (out / "corpus.jsonl").open("w") as f:
        for d in keep:
            f.write(json.dumps({"_id": d, "title": corpus[d].title, "text": corpus[d].text}) + "\n")
    with (out / "queries.jsonl").open("w") as f:
        for q in qids:
            f.write(json.dumps({"_id": q, "text": queries[q]}) + "\n")
    with (out / "qrels.tsv").open("w") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for q in qids:
            for d, g in qrels[q].items():
                f.write(f"{q}\t{d}\t{g}\n")
    return out / "corpus.jsonl", out / "queries.jsonl", out / "qrels.tsv"


def test_eval_indexes_once_and_scores(mini_beir: tuple[Path, Path, Path]) -> None:
    corpus, queries, qrels = mini_beir
    first = evaluate_retrieval(parse_config({}), corpus, queries, qrels)
    assert first.queries == 6 and first.complete
    assert first.embedded_docs == first.corpus_docs and not first.index_reused
    assert first.metrics["ndcg@10"] > 0.5, first.metrics
    assert set(first.metrics) == {"ndcg@10", "recall@10", "recall@100", "mrr@10"}
    assert set(first.latency_ms) == {"embed_query", "search", "total"}

    hybrid = evaluate_retrieval(parse_config({"retrieval": {"mode": "hybrid"}}), corpus, queries, qrels)
    assert hybrid.index_reused and hybrid.embedded_docs == 0, "the same corpus and embedder reuse the index"
    assert hybrid.collection == first.collection
    assert hybrid.metrics["recall@100"] == 1.0


def test_cli_json(mini_beir: tuple[Path, Path, Path]) -> None:
    corpus, queries, qrels = mini_beir
    args = ["eval", "retrieval", "--corpus", str(corpus), "--queries", str(queries), "--qrels", str(qrels)]
    result = CliRunner().invoke(app, [*args, "--mode", "sparse", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["mode"] == "sparse" and data["queries"] == 6 and 0 < data["metrics"]["ndcg@10"] <= 1
    assert "run" not in data and data["config"]["retrieval"]["mode"] == "sparse"
    bad = CliRunner().invoke(app, [*args, "--mode", "fuzzy"])
    assert bad.exit_code == 64 and "--mode 'fuzzy' is not a search mode" in bad.output
