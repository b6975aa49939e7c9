"""Loaders of HotpotQA (IRCoT) and NQ-Open files: pooled corpus, stable ids, gold flags, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragcli.errors import InputError
from ragcli.eval.qa_data import load_qa, paragraph_id


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def _hotpot(qid: str, question: str, answer: str, paras: list[tuple[str, str, bool]]) -> dict[str, object]:
    return {
        "question_id": qid,
        "question_text": question,
        "answers_objects": [{"number": "", "date": {"day": "", "month": "", "year": ""}, "spans": [answer]}],
        "contexts": [
            {"id": str(i), "title": t, "paragraph_text": p, "is_supporting": s}
            for i, (t, p, s) in enumerate(paras)
        ],
    }


def test_hotpotqa_pools_paragraphs_with_stable_ids_and_gold_flags(tmp_path: Path) -> None:
    shared = ("Paris", "Paris is the capital of France.", False)
    f = _write(tmp_path / "h.jsonl", [
        _hotpot("q1", "Capital of France?", "Paris", [("France", "France is a country.", True), shared]),
        _hotpot("q2", "Where is the Louvre?", "Paris", [("Louvre", "The Louvre is in Paris.", True), shared]),
    ])  # fmt: skip
    ds = load_qa(f, "hotpotqa")
    assert [q.id for q in ds.questions] == ["q1", "q2"]
    assert len(ds.paragraphs) == 3  # the shared paragraph is stored once
    q1 = ds.questions[0]
    assert q1.answers == ("Paris",)
    assert q1.supporting == (paragraph_id("France", "France is a country."),)
    assert len(q1.paragraphs) == 2
    assert ds.paragraphs[q1.supporting[0]].title == "France"
    assert load_qa(f, "hotpotqa").fingerprint == ds.fingerprint  # stable across loads


def test_hotpotqa_number_and_date_answers(tmp_path: Path) -> None:
    row = _hotpot("q", "When?", "", [("A", "a", True)])
    row["answers_objects"] = [
        {"number": "42", "date": {"day": "", "month": "", "year": ""}, "spans": []},
        {"number": "", "date": {"day": "4", "month": "July", "year": "1776"}, "spans": []},
    ]
    ds = load_qa(_write(tmp_path / "h.jsonl", [row]), "hotpotqa")
    assert ds.questions[0].answers == ("42", "4 July 1776")


def test_nq_gold_from_isgold_or_first_context(tmp_path: Path) -> None:
    f = _write(tmp_path / "n.jsonl", [
        {"question": "who wrote hamlet", "answers": ["Shakespeare"],
         "ctxs": [{"title": "Other", "text": "x", "isgold": False}, {"title": "Hamlet", "text": "By Shakespeare.",
                                                                   "isgold": True}]},
        {"id": "own-id", "question": "q2", "answers": ["a"], "ctxs": [{"title": "T", "text": "first"},
                                                                     {"title": "U", "text": "second"}]},
    ])  # fmt: skip
    ds = load_qa(f, "nq")
    first, second = ds.questions
    assert first.id == "nq-1"
    assert first.supporting == (paragraph_id("Hamlet", "By Shakespeare."),)
    assert second.id == "own-id"
    assert second.supporting == (paragraph_id("T", "first"),)
    assert len(ds.paragraphs) == 4


def test_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown question format 'squad'"):
        load_qa(tmp_path / "x.jsonl", "squad")
    with pytest.raises(InputError, match="does not exist"):
        load_qa(tmp_path / "missing.jsonl", "nq")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "answers": []}\nnot json\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"bad.jsonl:2: not valid JSON"):
        load_qa(bad, "nq")
    wrong = _write(tmp_path / "wrong.jsonl", [{"question": "q", "answers": ["a"], "ctxs": []}])
    with pytest.raises(InputError, match=r"`question_text` must be a str .*really a .hotpotqa. file"):
        load_qa(wrong, "hotpotqa")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(InputError, match="no questions found"):
        load_qa(empty, "nq")
