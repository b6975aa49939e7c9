"""`ragcli eval history` on tiny HotpotQA-shaped files: a window of 0 turns, files of another format, the table's
turn columns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragcli.cli import app
from ragcli.errors import InputError
from ragcli.eval.history_eval import evaluate_history, turn_columns
from tests.unit.test_cli_compress import _hotpot


def _count(text: str) -> int:
    return len(text.split())


def test_a_window_of_0_turns_sends_no_verbatim_turn(tmp_path: Path) -> None:
    report = evaluate_history(_hotpot(tmp_path), _count, turns=8, plant=2, window_turns=0)
    assert report.tokens_per_turn["last 0 turns"] == [0] * 8
    assert report.recall["last 0 turns"] == 0.0 and report.recall["full transcript"] == 1.0
    assert report.tokens_per_turn["full transcript"][-1] > 0
    window = evaluate_history(_hotpot(tmp_path), _count, turns=8, plant=2, window_turns=2)
    assert 0 < window.tokens_per_turn["last 2 turns"][-1] < window.tokens_per_turn["full transcript"][-1]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            {"question": "who?", "answers": ["x"], "ctxs": []},
            r"h\.jsonl:2: not a HotpotQA IRCoT row: no question_text, answers_objects, contexts "
            r"\(the line has keys answers, ctxs, question\); expected HotpotQA IRCoT rows",
        ),
        (
            {"question_text": "q?", "answers_objects": [], "contexts": [{"text": "t"}]},
            r"h\.jsonl:2: .*no contexts\[\]\.paragraph_text, contexts\[\]\.title",
        ),
        ("not json", r"h\.jsonl:2: not valid JSON"),
    ],
)
def test_a_file_of_another_format_names_the_line_and_the_keys(
    tmp_path: Path, line: object, message: str
) -> None:
    path = _hotpot(tmp_path, 1)
    with path.open("a", encoding="utf-8") as fh:
        fh.write("\n" + (line if isinstance(line, str) else json.dumps(line)) + "\n")
    with pytest.raises(InputError, match=message):
        evaluate_history(path, _count, turns=3, plant=1)


def test_the_cli_refuses_a_file_of_another_format_without_a_traceback(tmp_path: Path) -> None:
    nq = tmp_path / "nq.jsonl"
    nq.write_text(json.dumps({"question": "who?", "answers": ["x"], "ctxs": []}) + "\n")
    res = CliRunner().invoke(app, ["eval", "history", "--questions", str(nq), "--turns", "3", "--plant", "1"])
    assert res.exit_code == 64 and "nq.jsonl:1: not a HotpotQA IRCoT row" in res.output
    assert "Traceback" not in res.output


def test_the_table_shows_only_the_turns_the_conversation_has() -> None:
    assert turn_columns(3) == [3]
    assert turn_columns(10) == [10]
    assert turn_columns(20) == [10, 20]
    assert turn_columns(50) == [10, 25, 50]
