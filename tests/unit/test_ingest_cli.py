"""`ragcli ingest` through typer's CliRunner: exit codes, table, JSON, errors (hash embedder, embedded store)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragcli.cli import EXIT_PARTIAL, EXIT_USAGE, app

pytest.importorskip("qdrant_edge")

CONFIG = """
name: ingest-test
embedder: {type: hash, dim: 32}
llm: {type: scripted}
filterable: {team: keyword}
"""


@pytest.fixture
def corpus(tmp_path: Path) -> tuple[Path, Path]:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guide.md").write_text("# Guide\n\nInstall it. Then run it.\n\n## Config\n\nSet the key.\n")
    (docs / "prices.csv").write_text("item,price\napple,1\npear,2\n")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(CONFIG)
    return docs, cfg


def test_ingest_table_then_json_rerun_is_unchanged(corpus: tuple[Path, Path]) -> None:
    docs, cfg = corpus
    runner = CliRunner()
    res = runner.invoke(app, ["ingest", str(docs), "--config", str(cfg), "--meta", "team=search"])
    assert res.exit_code == 0, res.output
    assert "files ok" in res.output and "tokens embedded" in res.output
    res = runner.invoke(app, ["ingest", str(docs), "--config", str(cfg), "--meta", "team=search", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["files"] == {"ok": 0, "failed": 0, "empty": 0, "unchanged": 2, "total": 2}
    assert data["tokens_embedded"] == 0 and data["chunks"]["added"] == 0


def test_failed_file_gives_exit_2_with_reason(corpus: tuple[Path, Path]) -> None:
    docs, cfg = corpus
    (docs / "bad.md").write_bytes(b"\x00\x01binary")
    res = CliRunner().invoke(app, ["ingest", str(docs), "--config", str(cfg), "--json"])
    assert res.exit_code == EXIT_PARTIAL, res.output
    data = json.loads(res.stdout)
    assert data["files"]["ok"] == 2 and data["files"]["failed"] == 1
    assert data["failures"][0]["path"].endswith("bad.md") and "binary" in data["failures"][0]["reason"]
    assert data["largest_chunk_tokens"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ingest", "/no/such/dir"], "path not found: /no/such/dir; check the spelling"),
        (["ingest"], "no paths given; run `ragcli ingest PATH...`"),
        (["ingest", ".", "--meta", "oops"], "not key=value"),
    ],
)
def test_usage_errors_are_one_line_exit_64(args: list[str], message: str) -> None:
    res = CliRunner().invoke(app, args)
    assert res.exit_code == EXIT_USAGE
    assert message in res.output
    assert res.output.strip().startswith("error:") and "Traceback" not in res.output
