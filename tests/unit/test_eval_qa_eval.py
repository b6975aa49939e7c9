"""`evaluate_qa` and `ragcli eval qa` on a tiny inline HotpotQA file with fakes (hash embedder, scripted LLM).

Fakes prove plumbing only: indexing, reuse, budgets, scoring, partial results on interrupt, the CLI's output.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from ragcli.config import PipelineConfig, parse_config
from ragcli.eval.qa_data import Paragraph, QADataset, QAItem, load_qa, paragraph_id
from ragcli.eval.qa_eval import (
    QuestionResult,
    evaluate_qa,
    percentile,
    report_to_dict,
    score_prompt,
    summarize,
)

PARAS = {
    "Paris": "Paris is the capital and most populous city of France. It hosts the Louvre museum.",
    "France": "France is a country in Western Europe. Its capital is Paris.",
    "Louvre": "The Louvre is the world's most-visited museum. It opened in 1793 in Paris.",
    "Berlin": "Berlin is the capital of Germany. The Brandenburg Gate stands in Berlin.",
    "Tiber": "The Tiber is the third-longest river in Italy. Rome lies on the Tiber.",
}
QUESTIONS = [
    ("q1", "In which year did the Louvre museum open?", "1793", ["Louvre"]),
    ("q2", "Which gate stands in the capital of Germany?", "Brandenburg Gate", ["Berlin"]),
    ("q3", "Which river does Rome lie on?", "Tiber", ["Tiber"]),
    ("q4", "Is Paris the capital of France?", "yes", ["Paris", "France"]),
]


def _hotpot_file(path: Path) -> Path:
    rows = []
    for qid, q, a, gold in QUESTIONS:
        rows.append({
            "question_id": qid, "question_text": q,
            "answers_objects": [{"number": "", "date": {"day": "", "month": "", "year": ""}, "spans": [a]}],
            "contexts": [{"id": str(i), "title": t, "paragraph_text": p, "is_supporting": t in gold}
                         for i, (t, p) in enumerate(PARAS.items())],
        })  # fmt: skip
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def _config(replies: list[str] | None = None) -> dict[str, Any]:
    return {
        "name": "fake",
        "embedder": {"type": "hash", "dim": 64},
        "llm": {"type": "scripted", "replies": replies or ["1793"], "context_window": 4096},
        "retrieval": {"top_k": 5, "candidates": 10},
    }


@pytest.fixture
def dataset(tmp_path: Path) -> QADataset:
    return load_qa(_hotpot_file(tmp_path / "h.jsonl"), "hotpotqa")


def test_score_prompt_excludes_the_question_and_yes_no() -> None:
    pid = paragraph_id("Louvre", PARAS["Louvre"])
    item = QAItem("q", "Which is older, 1793 or 1801?", ("1793",), (pid,))
    table = {pid: Paragraph(pid, "Louvre", PARAS["Louvre"])}
    in_ctx, in_prompt, found = score_prompt(
        item, "Sources:\n\nQuestion: Which is older, 1793 or 1801?", table
    )
    assert (in_ctx, in_prompt, found) == (False, True, 0)
    prompt = f"Sources:\n[1] Louvre\n{PARAS['Louvre']}\n\nQuestion: {item.question}"
    assert score_prompt(item, prompt, table) == (True, True, 1)
    assert score_prompt(item, "nothing", table, [pid])[2] == 1  # cited counts even when trimmed away
    yes_no = QAItem("y", "Is it?", ("yes",), (pid,))
    assert score_prompt(yes_no, "yes yes", table)[:2] == (None, None)


def test_summarize_and_percentile() -> None:
    rows = [
        QuestionResult("a", True, True, True, 2, 2, 100, 0.1),
        QuestionResult("b", True, False, True, 1, 2, 300, 0.3),
        QuestionResult("c", False, None, None, 0, 2, 200, 0.2),
    ]
    from ragcli.cost.prices import Price

    run = summarize("x", 256, rows, 4, Price("m", input=1.0, output=2.0))
    assert run.partial  # 3 of 4 planned
    assert run.answerable == 2
    assert run.answer_in_context == 0.5
    assert run.answer_in_prompt == 1.0
    assert run.supporting_recall == pytest.approx((1 + 0.5 + 0) / 3)
    assert run.mean_prompt_tokens == 200
    assert run.usd_per_1k_queries == pytest.approx(1000 * 200 / 1e6)
    assert run.seconds_per_query == pytest.approx(0.2)
    assert percentile([1, 2, 3, 4, 5], 95) == pytest.approx(4.8)
    assert percentile([], 95) == 0.0


def test_evaluate_qa_measures_budgets_and_reuses_the_index(dataset: QADataset) -> None:
    cfg: PipelineConfig = parse_config(_config())
    report = evaluate_qa(dataset, cfg, [16, 400])
    assert not report.partial
    assert report.index is not None and not report.index.reused
    assert report.index.paragraphs == len(PARAS)
    assert report.index.collection.startswith("qa-hotpotqa-")
    small, large = report.runs
    assert (small.budget_tokens, large.budget_tokens) == (16, 400)
    assert small.questions == large.questions == 4
    assert small.answerable == 3  # the yes/no question is left out
    assert small.mean_prompt_tokens < large.mean_prompt_tokens
    assert large.answer_in_context == 1.0  # 400 words hold every paragraph of this tiny corpus
    assert large.supporting_recall == 1.0
    again = evaluate_qa(dataset, cfg, [400], limit=2)
    assert again.index is not None and again.index.reused and again.index.embedded_chunks == 0
    assert again.runs[0].questions == 2
    data = report_to_dict(report)
    assert "chunk_paragraph" not in data["index"]  # type: ignore[operator]
    assert "per_question" not in data["runs"][0]  # type: ignore[index]
    assert data["versions"]["python"]  # type: ignore[index]


def test_answer_scores_exact_match_and_f1(dataset: QADataset) -> None:
    cfg = parse_config(_config(["1793"]))
    run = evaluate_qa(dataset, cfg, [400], answer=True, limit=1).runs[0]
    assert run.exact_match == 1.0 and run.f1 == 1.0
    assert run.mean_output_tokens == 1
    assert run.per_question[0].prediction == "1793"


def test_interrupt_marks_the_results_partial(dataset: QADataset, monkeypatch: pytest.MonkeyPatch) -> None:
    import ragcli.pipelines.query_pipeline as qp

    real = qp.answer
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(qp, "answer", flaky)
    report = evaluate_qa(dataset, parse_config(_config()), [400, 800])
    assert report.partial
    assert len(report.runs) == 1  # the second budget never started
    assert report.runs[0].partial and report.runs[0].questions == 2 and report.runs[0].questions_planned == 4


def test_cli_eval_qa_json_table_and_partial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ragcli.cli import app

    questions = _hotpot_file(tmp_path / "h.jsonl")
    cfg_file = tmp_path / "fake.yaml"
    cfg_file.write_text(yaml.safe_dump(_config()), encoding="utf-8")
    runner = CliRunner()
    base = ["eval", "qa", "--questions", str(questions), "--format", "hotpotqa", "--config", str(cfg_file)]
    res = runner.invoke(app, [*base, "--budget-tokens", "32", "--budget-tokens", "400", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [r["budget_tokens"] for r in data["runs"]] == [32, 400]
    assert data["partial"] is False and data["config"]["name"] == "fake"
    import importlib.util

    plot = tmp_path / "curve.png"
    with_plot = ["--plot", str(plot)] if importlib.util.find_spec("matplotlib") else []
    res = runner.invoke(app, [*base, "--model", "gpt-4o-mini", *with_plot])
    assert res.exit_code == 0, res.output
    assert plot.is_file() or not with_plot
    assert "fake on h.jsonl (hotpotqa)" in res.stdout
    assert "o200k_base (gpt-4o-mini)" in res.stdout.replace("\n", "")

    res = runner.invoke(app, ["eval", "qa", "--questions", str(questions), "--format", "squad"])
    assert res.exit_code != 0 and "unknown question format 'squad'" in res.output

    import ragcli.pipelines.query_pipeline as qp

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(qp, "answer", interrupted)
    res = runner.invoke(app, [*base, "--json"])
    assert res.exit_code == 130
    assert json.loads(res.stdout)["partial"] is True
    assert "PARTIAL" in res.output


def test_a_given_budget_replaces_the_configs_own(dataset: QADataset) -> None:
    data = _config()
    data["packing"] = {"budget_tokens": 16}
    own, wide = evaluate_qa(dataset, parse_config(data), [None, 400]).runs
    assert own.budget_tokens is None and wide.budget_tokens == 400
    assert own.mean_prompt_tokens < wide.mean_prompt_tokens  # 400 is not capped at the config's 16
