"""`ragcli cost`: totals from the ledger as a table and as JSON; errors as one line."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragcli.cli import app
from ragcli.cost.ledger import Ledger, LedgerRow
from ragcli.types import Usage

runner = CliRunner()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    ledger = tmp_path / "ledger.sqlite"
    with Ledger(ledger) as led:
        for ts, stage, model, usd in (
            ("2026-01-01T10:00:00.000+00:00", "embed", "all-MiniLM-L6-v2", 0.0),
            ("2026-01-01T10:00:01.000+00:00", "llm", "gpt-4o-mini", 0.0015),
            ("2026-01-02T10:00:00.000+00:00", "llm", "gpt-4o-mini", 0.0025),
            ("2026-01-02T11:00:00.000+00:00", "llm", "mystery-model", None),
        ):
            led.record(replace(LedgerRow.of(stage, model, Usage(100, 20, 10, usd, 1), 0.1), ts=ts))
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"cost:\n  ledger: {ledger}\n")
    return cfg


def test_cost_json_by_model(config: Path) -> None:
    result = runner.invoke(app, ["cost", "--by", "model", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    groups = {g["key"]: g for g in data["groups"]}
    assert groups["gpt-4o-mini"]["calls"] == 2 and groups["gpt-4o-mini"]["usd"] == pytest.approx(0.004)
    assert groups["mystery-model"]["usd_complete"] is False
    assert (
        data["total"]["calls"] == 4
        and data["total"]["input_tokens"] == 400
        and data["total"]["cached_tokens"] == 80
    )
    assert data["total"]["unknown_cost_calls"] == 1


def test_cost_table_by_day_marks_unknown(config: Path) -> None:
    result = runner.invoke(app, ["cost", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "2026-01-01" in result.stdout and "2026-01-02" in result.stdout
    assert "unknown (1 call)" in result.stdout and "cost.prices" in result.stdout


def test_cost_since(config: Path) -> None:
    result = runner.invoke(
        app, ["cost", "--by", "stage", "--since", "2026-01-02", "--config", str(config), "--json"]
    )
    data = json.loads(result.stdout)
    assert [g["key"] for g in data["groups"]] == ["llm"] and data["total"]["calls"] == 2


def test_cost_bad_options_are_one_line_errors(config: Path) -> None:
    bad_by = runner.invoke(app, ["cost", "--by", "week", "--config", str(config)])
    assert bad_by.exit_code != 0 and "day, model, stage" in bad_by.output
    bad_since = runner.invoke(app, ["cost", "--since", "last tuesday", "--config", str(config)])
    assert bad_since.exit_code != 0 and "YYYY-MM-DD" in bad_since.output


def test_cost_with_no_ledger_yet(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"cost:\n  ledger: {tmp_path / 'none.sqlite'}\n")
    result = runner.invoke(app, ["cost", "--config", str(cfg)])
    assert result.exit_code == 0 and "no calls recorded yet" in result.stdout
    assert not (tmp_path / "none.sqlite").exists()


def test_cost_table_shows_what_the_cache_saved(config: Path, tmp_path: Path) -> None:
    assert "saved" not in runner.invoke(app, ["cost", "--config", str(config)]).stdout  # nothing saved yet
    hit = LedgerRow.of("cache", "gpt-4o-mini", Usage(0, 0, 0, 0.0, 1), 0.01)
    with Ledger(tmp_path / "ledger.sqlite") as led:
        led.record(replace(hit, ts="2026-01-02T12:00:00.000+00:00", saved_usd=0.0025, lever="cache"))
    result = runner.invoke(app, ["cost", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "saved" in result.stdout and "$0.002500" in result.stdout


def test_cost_files_get_their_folder_made_and_a_folder_path_is_refused(config: Path, tmp_path: Path) -> None:
    nested = tmp_path / "out" / "deeper" / "spend.csv"
    assert runner.invoke(app, ["cost", "--config", str(config), "--csv", str(nested)]).exit_code == 0
    assert nested.is_file()
    r = runner.invoke(app, ["cost", "report", "--html", str(tmp_path), "--config", str(config)])
    assert r.exit_code == 64 and "--html" in r.output and "is a folder" in r.output
    page = tmp_path / "new" / "cost.html"
    assert runner.invoke(app, ["cost", "report", "--html", str(page), "--config", str(config)]).exit_code == 0
    assert page.is_file()
