"""CLI behaviour that needs no model: help is fast, errors are one line with a non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from ragcli.cli import EXIT_USAGE, app

runner = CliRunner()


def test_help_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from ragcli.cli import app\n"
        "r = CliRunner().invoke(app, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "heavy = [m for m in ('torch', 'sentence_transformers', 'unstructured', 'llama_cpp', 'transformers')"
        " if m in sys.modules]\n"
        "print(heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_config_validate_ok() -> None:
    result = runner.invoke(app, ["config", "validate", "local"])
    assert result.exit_code == 0
    assert "valid config" in result.output


def test_config_validate_reports_every_problem(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("retrieval:\n  top_k: 0\n  modes: dense\nllm:\n  type: gpt\n")
    result = runner.invoke(app, ["config", "validate", str(f)])
    assert result.exit_code == EXIT_USAGE
    assert result.output.startswith("error: ")
    for path in ("retrieval.top_k", "retrieval.modes: unknown key", "llm.type"):
        assert path in result.output


def test_unknown_preset_is_one_line_error() -> None:
    result = runner.invoke(app, ["config", "show", "nope"])
    assert result.exit_code == EXIT_USAGE
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: unknown preset 'nope'")


def test_config_show_json() -> None:
    result = runner.invoke(app, ["config", "show", "local", "--json"])
    assert result.exit_code == 0
    assert '"type": "qdrant_edge"' in result.output
