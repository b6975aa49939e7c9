"""The Done-when errors of the foundation: one line, says what to do, non-zero exit."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ragcli.cli import EXIT_USAGE, app

runner = CliRunner()


def _fake_config(tmp_path: Path) -> str:
    f = tmp_path / "fake.yaml"
    f.write_text(
        yaml.safe_dump(
            {
                "store": {"type": "qdrant_edge"},
                "embedder": {"type": "hash"},
                "llm": {"type": "scripted"},
            }
        )
    )
    return str(f)


def _one_line_error(output: str) -> str:
    lines = [ln for ln in output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith("error: "), output
    return lines[0]


def test_query_on_missing_store(tmp_path: Path) -> None:
    result = runner.invoke(app, ["query", "What is X?", "-c", _fake_config(tmp_path), "--collection", "nope"])
    assert result.exit_code == EXIT_USAGE
    line = _one_line_error(result.output)
    assert "'nope'" in line and "ragcli ingest" in line


def test_query_empty_question(tmp_path: Path) -> None:
    result = runner.invoke(app, ["query", "  ", "-c", _fake_config(tmp_path)])
    assert result.exit_code == EXIT_USAGE
    assert "question is empty" in _one_line_error(result.output)


def test_ingest_missing_path(tmp_path: Path) -> None:
    result = runner.invoke(app, ["ingest", str(tmp_path / "no-such-dir"), "-c", _fake_config(tmp_path)])
    assert result.exit_code == EXIT_USAGE
    line = _one_line_error(result.output)
    assert "no-such-dir" in line


def test_unknown_preset_on_query() -> None:
    result = runner.invoke(app, ["query", "What?", "-c", "bogus"])
    assert result.exit_code == EXIT_USAGE
    line = _one_line_error(result.output)
    assert "unknown preset 'bogus'" in line and "local" in line


def test_verbose_shows_traceback() -> None:
    result = runner.invoke(app, ["-v", "query", "What?", "-c", "bogus"])
    assert result.exit_code == EXIT_USAGE
    assert "Traceback" in result.output


@pytest.mark.parametrize(
    "command",
    [["train", "embedder"], ["train", "reranker"], ["train", "fusion"], ["train", "sentence-model"]],
)
@pytest.mark.parametrize("name", ["../x", "/tmp/abs", ".hidden", ""])
def test_a_trained_model_name_that_is_a_path_is_refused_before_any_work(
    command: list[str], name: str
) -> None:
    extra = ["--questions", "missing.jsonl"] if command[-1] == "sentence-model" else []
    result = CliRunner().invoke(app, [*command, "--name", name, *extra])
    assert result.exit_code == 64 and "name" in result.output and "not valid" in result.output, result.output
