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


def test_a_cache_hit_prints_its_answer_and_says_it_came_from_the_cache(tmp_path: Path) -> None:
    # a streamed query prints the tokens as they come; a cache hit streams none, so its text is printed whole
    cfg = tmp_path / "cached.yaml"
    cfg.write_text(
        "collection: t\nstore: {type: qdrant_edge}\nembedder: {type: hash, dim: 64}\n"
        "llm: {type: scripted, replies: ['The limit is 250 euros [1].']}\n"
        "cache: {enabled: true, semantic: 'off'}\n"
    )
    docs = Path(__file__).resolve().parents[2] / "samples" / "docs" / "travel-policy.md"
    assert runner.invoke(app, ["ingest", "-c", str(cfg), str(docs)]).exit_code == 0
    q = "What is the hotel limit in Paris?"
    first = runner.invoke(app, ["query", "-c", str(cfg), q])
    assert first.exit_code == 0 and "250 euros" in first.output and "from the cache" not in first.output
    second = runner.invoke(app, ["query", "-c", str(cfg), q])
    assert second.exit_code == 0, second.output
    text = " ".join(second.output.split())  # the console wraps long lines
    assert text.startswith("The limit is 250 euros") and "from the cache (exact" in text


def test_config_validate_warns_about_trained_models_the_home_lacks(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(
        "packing: {select_sentences: true, sentence_model: 'trained:nope'}\nrouter: {model: ghost}\n"
    )
    result = runner.invoke(app, ["config", "validate", str(f)])
    assert result.exit_code == 0 and "valid config" in result.stdout
    said = " ".join(result.stderr.split())
    assert "trained:nope is not in" in said and "ragcli train sentence-model --name nope" in said
    assert "no router 'ghost'" in said
