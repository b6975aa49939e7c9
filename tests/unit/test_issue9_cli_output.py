"""Issue 9, item 10: what the CLI prints: [brackets] survive, errors name the flag or the question, usage errors
exit 64, --show-prompt goes to stdout, skipped files and overridden --meta values are reported."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ragcli.cli import EXIT_USAGE, app

runner = CliRunner()


def _config(tmp_path: Path, **extra: object) -> str:
    f = tmp_path / "c.yaml"
    data = {"home": str(tmp_path / "home"), "embedder": {"type": "hash"}, "llm": {"type": "scripted"}}
    f.write_text(yaml.safe_dump({**data, **extra}))
    return str(f)


def _ingested(tmp_path: Path) -> str:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text(
        "Expenses are submitted within 30 days.\n\nThe hotel limit in Paris is 200 euros."
    )
    cfg = _config(tmp_path)
    result = runner.invoke(app, ["ingest", str(docs), "-c", cfg])
    assert result.exit_code == 0, result.output
    return cfg


def test_brackets_in_a_missing_config_name_are_printed(tmp_path: Path) -> None:
    result = runner.invoke(app, ["config", "validate", str(tmp_path / "notes [draft].yaml")])
    assert result.exit_code == EXIT_USAGE
    assert "notes [draft].yaml" in result.output


def test_brackets_in_a_yaml_error_are_printed(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("collection: [a, b\nname: x\n")
    result = runner.invoke(app, ["config", "validate", str(bad)])
    assert result.exit_code == EXIT_USAGE
    assert "not valid YAML" in result.output
    assert "'['" in result.output or "[a, b" in result.output or "flow sequence" in result.output
    assert "[" in result.output.split("not valid YAML", 1)[1]


def test_brackets_in_failed_and_empty_file_names(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes [draft].txt").write_bytes(b"\x00\x01binary\x00")
    (docs / "empty [old].md").write_text("   \n")
    (docs / "ok.txt").write_text("Some text that is fine.")
    result = runner.invoke(app, ["ingest", str(docs), "-c", _config(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "notes [draft].txt" in result.output
    assert "empty [old].md" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["query"],  # missing argument
        ["query", "q", "--budget-tokens", "abc"],  # bad value
        ["query", "q", "--no-such-flag"],  # unknown option
        ["no-such-command"],
        ["config", "validate"],  # missing argument in a sub-app
    ],
)
def test_usage_errors_exit_64(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == EXIT_USAGE, result.output


def test_negative_budget_names_the_flag(tmp_path: Path) -> None:
    result = runner.invoke(app, ["query", "q", "-c", _config(tmp_path), "--budget-tokens", "-5"])
    assert result.exit_code == EXIT_USAGE, result.output
    assert "--budget-tokens" in result.output
    assert "history" not in result.output


def test_a_huge_question_is_named(tmp_path: Path) -> None:
    cfg = _ingested(tmp_path)
    question = "why " * 25_000  # 100k characters, 99,999 once its trailing space is stripped
    result = runner.invoke(app, ["query", question, "-c", cfg])
    assert result.exit_code == EXIT_USAGE, result.output
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("error: the question is too long: 99,999 characters"), line
    assert "history" not in line


def test_show_prompt_goes_to_stdout(tmp_path: Path) -> None:
    cfg = _ingested(tmp_path)
    result = runner.invoke(app, ["query", "hotel limit in Paris?", "-c", cfg, "--show-prompt", "--no-stream"])
    assert result.exit_code == 0, result.output
    assert "--- system" in result.stdout and "--- user" in result.stdout
    assert "hotel limit in Paris" in result.stdout


def test_unsupported_files_and_symlink_loops_are_reported(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Some text.")
    (docs / "diagram.vsdx").write_bytes(b"PK\x03\x04 not read")
    (docs / "Makefile").write_text("all:\n\techo hi\n")
    (docs / "a.txt.meta.json").write_text('{"team": "x"}')  # a sidecar is not a skipped file
    (docs / "sub").mkdir()
    os.symlink(docs / "sub" / "loop", docs / "sub" / "loop")
    os.symlink(docs / "missing.txt", docs / "broken.txt")
    result = runner.invoke(app, ["ingest", str(docs), "-c", _config(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    reasons = {Path(s["path"]).name: s["reason"] for s in summary["skipped"]}
    assert "unsupported file type .vsdx" in reasons["diagram.vsdx"]
    assert "(no extension)" in reasons["Makefile"]
    assert "symlink loop" in reasons["loop"]
    assert "broken symlink" in reasons["broken.txt"]
    assert "a.txt.meta.json" not in reasons
    assert "diagram.vsdx" in result.stderr and "symlink loop" in result.stderr


def test_the_cli_says_a_skipped_file_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command prints the report's skipped files; the library's log line for them is quieted (it went to
    stderr beside the command's own `warning:` line)."""
    import logging

    from ragcli.cli_support import set_verbose
    from ragcli.pipelines.ingest_pipeline import skipped_log

    for name in (skipped_log.name, "pypdf"):
        monkeypatch.setattr(logging.getLogger(name), "level", logging.NOTSET)
    set_verbose(False)
    assert skipped_log.getEffectiveLevel() == logging.ERROR
    assert logging.getLogger("pypdf").getEffectiveLevel() == logging.ERROR


def test_meta_overridden_by_front_matter_is_warned(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("---\nteam: search\n---\n# Title\n\nSome text.\n")
    (docs / "b.md").write_text("# Other\n\nMore text.\n")
    result = runner.invoke(app, ["ingest", str(docs), "-c", _config(tmp_path), "--meta", "team=finance"])
    assert result.exit_code == 0, result.output
    assert "a.md: its own team=search wins over --meta team=finance" in result.stderr
    assert "b.md" not in result.stderr
    help_text = " ".join(runner.invoke(app, ["ingest", "--help"]).output.replace("│", " ").split())
    assert "front matter or sidecar value for the same key wins" in help_text
