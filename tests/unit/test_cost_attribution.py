"""Attribution, exports, prices, forecast, replay and break-even through `ragcli cost ...`."""

from __future__ import annotations

import csv
import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragcli.cli import app
from ragcli.config import CostConfig
from ragcli.cost.attribution import group_calls, group_parts, split_parts, total_of
from ragcli.cost.ledger import Ledger, LedgerRow
from ragcli.cost.ledger_reader import read_calls, read_parts
from ragcli.cost.price import Price
from ragcli.cost.prices import PriceTable
from ragcli.types import Usage

runner = CliRunner()
PARTS = {"system": 100, "history": 0, "context": 800, "question": 20}


def _write_parts(path: Path, call_id: int, usage: Usage, price: Price | None) -> None:
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS call_parts (call_id INTEGER, part TEXT, tokens INTEGER, usd REAL)"
        )
        for part, tokens, usd in split_parts(PARTS, usage, price):
            db.execute("INSERT INTO call_parts VALUES (?,?,?,?)", (call_id, part, tokens, usd))


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.sqlite"
    price = Price("gpt-4o-mini", input=0.15, output=0.60, cached_input=0.075)
    with Ledger(path) as led:
        for i in range(6):
            day = f"2026-01-0{1 + i % 3}T10:00:0{i}.000+00:00"
            q = f"q{i}"
            emb = Usage(12, 0, 0, 0.0, 1)
            led.record(replace(LedgerRow.of("embed", "all-MiniLM-L6-v2", emb, 0.01, q), ts=day))
            u = Usage(960, 512 if i % 2 else 0, 50, None, 1)
            u = replace(u, usd=price.cost_of(u))
            led.record(replace(LedgerRow.of("llm", "gpt-4o-mini", u, 0.5, q), ts=day))
            _write_parts(path, 2 * i + 2, u, price)
        led.record(LedgerRow.of("llm", "mystery-model", Usage(10, 0, 5, None, 1), 0.1, "q9"))
    return path


@pytest.fixture
def config(ledger: Path, tmp_path: Path) -> Path:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"cost:\n  ledger: {ledger}\n  use_litellm_prices: false\n")
    return cfg


def test_parts_add_up_to_the_call_and_cached_tokens_go_to_the_prefix() -> None:
    price = Price("m", input=1.0, output=4.0, cached_input=0.1)
    u = Usage(920, 100, 50, None, 1)
    u = replace(u, usd=price.cost_of(u))
    split = {p: (n, usd) for p, n, usd in split_parts(PARTS, u, price)}
    assert sum(n for p, (n, _) in split.items() if p != "output") == 920
    assert sum(usd or 0 for _, usd in split.values()) == pytest.approx(u.usd)
    # the system prompt (100 tokens) is the cached prefix: it costs a tenth per token of the context
    assert split["system"][1] / split["system"][0] == pytest.approx(
        split["context"][1] / split["context"][0] / 10
    )
    assert split["output"] == (50, pytest.approx(200 / 1e6))
    assert all(usd is None for _, _, usd in split_parts(PARTS, replace(u, usd=None), price))


def test_group_by_part_matches_the_ledger_total(ledger: Path) -> None:
    calls = read_calls(ledger)
    parts = group_parts(calls, read_parts(ledger))
    by_stage = total_of(group_calls(calls, "stage"))
    assert total_of(parts).usd == pytest.approx(by_stage.usd)
    keys = [g.key for g in parts]
    assert keys[:4] == ["system", "context", "question", "output"] and "unattributed" in keys
    assert total_of(parts).unknown_cost_calls == by_stage.unknown_cost_calls == 1


def test_cost_by_part_json_csv_and_parquet_message(config: Path, tmp_path: Path) -> None:
    out_csv = tmp_path / "parts.csv"
    result = runner.invoke(
        app, ["cost", "--by", "part", "--config", str(config), "--json", "--csv", str(out_csv)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {g["key"] for g in data["groups"]} >= {"system", "context", "question", "output"}
    # a call split over its parts counts once in the total, as in every other grouping
    by_day = json.loads(runner.invoke(app, ["cost", "--config", str(config), "--json"]).stdout)
    assert data["total"]["calls"] <= by_day["total"]["calls"] < sum(g["calls"] for g in data["groups"])
    rows = list(csv.DictReader(out_csv.open()))
    assert {r["key"] for r in rows} == {g["key"] for g in data["groups"]}
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        res = runner.invoke(app, ["cost", "--config", str(config), "--parquet", str(tmp_path / "x.parquet")])
        assert res.exit_code == 64 and "pyarrow" in res.output


@pytest.mark.parametrize("by", ["stage", "model", "tenant", "day", "preset", "provider"])
def test_cost_by_every_grouping(config: Path, by: str) -> None:
    result = runner.invoke(app, ["cost", "--by", by, "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "1 call(s) used models with no known price" in result.output


def test_cost_prices_shows_source_and_date(config: Path) -> None:
    result = runner.invoke(
        app, ["cost", "prices", "gpt-4o-mini", "smollm2-135m-instruct", "--config", str(config), "--json"]
    )
    assert result.exit_code == 0, result.output
    data = {d["model"]: d for d in json.loads(result.stdout)}
    assert (
        data["smollm2-135m-instruct"]["source"] == "shipped" and data["smollm2-135m-instruct"]["input"] == 0
    )
    assert data["gpt-4o-mini"]["as_of"] and data["gpt-4o-mini"]["input"] == pytest.approx(0.15)
    unknown = runner.invoke(app, ["cost", "prices", "acme-9000", "--config", str(config)])
    assert unknown.exit_code == 64 and "cost.prices" in unknown.output


def test_forecast_replay_and_breakeven(config: Path) -> None:
    fc = runner.invoke(
        app,
        [
            "cost",
            "forecast",
            "--queries-per-day",
            "10000",
            "--model",
            "gpt-4o-mini",
            "--config",
            str(config),
            "--json",
        ],
    )
    assert fc.exit_code == 0, fc.output
    f = json.loads(fc.stdout)["forecasts"][0]
    # the profile: 7 queries, 7 LLM calls (one of them the 10-token mystery call)
    assert f["usd_per_day"] == pytest.approx(f["usd_per_query"] * 10000)
    rp = runner.invoke(app, ["cost", "replay", "--model", "gpt-4o", "--config", str(config), "--json"])
    assert rp.exit_code == 0, rp.output
    replayed = json.loads(rp.stdout)[0]
    assert replayed["calls"] == 7 and replayed["replayed_usd"] > replayed["recorded_usd"]
    be = runner.invoke(
        app,
        [
            "cost",
            "breakeven",
            "--gpu-usd-per-hour",
            "38",
            "--tokens-per-second",
            "20000",
            "--config",
            str(config),
        ],
    )
    assert be.exit_code == 0, be.output
    assert "$27,740 a month" in be.output


def test_report_html_is_self_contained(config: Path, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    result = runner.invoke(
        app, ["cost", "report", "--html", str(page), "--price-as", "gpt-4o", "--config", str(config)]
    )
    assert result.exit_code == 0, result.output
    text = page.read_text()
    assert text.startswith("<!doctype html>") and "<svg" in text and "<script" not in text
    assert "http://" not in text and "https://" not in text
    for heading in ("Spend over time by stage", "Tokens by prompt part", "Savings", "Costliest queries"):
        assert heading in text


def test_forecast_prices_at_a_model(ledger: Path) -> None:
    from ragcli.cost.forecast import forecast, profile

    prof = profile(read_calls(ledger))
    table = PriceTable.load(CostConfig(use_litellm_prices=False))
    f = forecast(prof, table, "gpt-4o-mini", 1000, cached_share=0.0)
    per_call = (
        round(prof.input_tokens / prof.llm_calls) * 0.15 + round(prof.output_tokens / prof.llm_calls) * 0.6
    ) / 1e6
    assert f.usd_per_query == pytest.approx(per_call * prof.llm_calls)
    assert forecast(prof, table, "acme-9000", 1000).usd_per_day is None
