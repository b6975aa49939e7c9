"""Ranking metrics against hand-computed values, and the BEIR loaders' errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from ragcli.errors import InputError
from ragcli.eval.beir import load_corpus, load_qrels, load_queries
from ragcli.eval.metrics import evaluate, mrr_at_k, ndcg_at_k, percentile, recall_at_k


def test_ndcg_matches_the_trec_definition() -> None:
    grades = {"a": 1, "b": 2, "z": 0}
    # DCG = 1/log2(2) [a at rank 1] + 2/log2(4) [b at rank 3]; IDCG = 2/log2(2) + 1/log2(3)
    dcg = 1 / math.log2(2) + 2 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at_k(["a", "x", "b"], grades, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(["b", "a"], grades, 10) == pytest.approx(1.0)
    assert ndcg_at_k(["x", "a"], grades, 1) == 0.0
    assert ndcg_at_k(["z"], {"z": 0}, 10) == 0.0, "a query with no relevant document scores 0"


def test_recall_and_mrr() -> None:
    grades = {"a": 1, "b": 1, "c": 1, "n": 0}
    assert recall_at_k(["a", "x", "b", "n"], grades, 2) == pytest.approx(1 / 3)
    assert recall_at_k(["a", "x", "b"], grades, 10) == pytest.approx(2 / 3)
    assert mrr_at_k(["n", "x", "c"], grades, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(["n", "x", "c"], grades, 2) == 0.0


def test_evaluate_averages_over_judged_queries_and_dedupes_documents() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    run = {"q1": ["a", "a", "x"], "q3": ["b"]}  # q2 returned nothing; q3 is not judged
    m = evaluate(run, qrels, ndcg_k=(10,), recall_k=(1, 2), mrr_k=(10,))
    assert m == {"ndcg@10": 0.5, "recall@1": 0.5, "recall@2": 0.5, "mrr@10": 0.5}
    assert evaluate({"q": ["x", "x", "a"]}, {"q": {"a": 1}}, recall_k=(2,))["recall@2"] == 1.0


def test_percentile_interpolates() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([1.0], 95) == 1.0
    assert percentile([], 50) == 0.0
    assert percentile(list(range(101)), 95) == 95


def test_beir_loaders(tmp_path: Path) -> None:
    (tmp_path / "c.jsonl").write_text(
        '{"_id": "1", "title": "T", "text": "body"}\n\n{"_id": 2, "text": "no title"}\n', encoding="utf-8"
    )
    (tmp_path / "q.jsonl").write_text('{"_id": "q1", "text": "what?"}\n', encoding="utf-8")
    (tmp_path / "r.tsv").write_text("query-id\tcorpus-id\tscore\nq1\t1\t1\nq1\t2\t0\n", encoding="utf-8")
    corpus = load_corpus(tmp_path / "c.jsonl")
    assert corpus["1"].full_text == "T\nbody" and corpus["2"].full_text == "no title"
    assert load_queries(tmp_path / "q.jsonl") == {"q1": "what?"}
    assert load_qrels(tmp_path / "r.tsv") == {"q1": {"1": 1, "2": 0}}


@pytest.mark.parametrize(
    ("name", "content", "loader", "message"),
    [
        ("missing.jsonl", None, load_corpus, "corpus file"),
        ("c.jsonl", "not json\n", load_corpus, "c.jsonl:1: not valid JSON"),
        ("c.jsonl", '{"title": "x"}\n', load_corpus, "c.jsonl:1: expected an object with an `_id` field"),
        ("c.jsonl", "\n", load_corpus, "holds no documents"),
        (
            "r.tsv",
            "query-id\tcorpus-id\tscore\nq1\td1\n",
            load_qrels,
            "r.tsv:2: expected `query-id<TAB>corpus-id",
        ),
        ("r.tsv", "q\tc\ts\nq1\td1\thigh\n", load_qrels, "r.tsv:2: the score 'high' is not an integer"),
        ("r.tsv", "query-id\tcorpus-id\tscore\n", load_qrels, "holds no judgements"),
        ("missing.tsv", None, load_qrels, "qrels file"),
    ],
)
def test_beir_errors(tmp_path: Path, name: str, content: str | None, loader: object, message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as info:
        loader(path)  # type: ignore[operator]
    assert message in str(info.value)
