"""Ledger on SQLite: rows, totals by day/model/stage, unknown costs, since."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest

from ragcli.cost.ledger import Ledger, LedgerRow, parse_since
from ragcli.errors import InputError
from ragcli.types import Usage


def row(
    stage: str, model: str, usd: float | None, ts: str, inp: int = 100, out: int = 10, qid: str = "q"
) -> LedgerRow:
    base = LedgerRow.of(stage, model, Usage(inp, 0, out, usd, 1), 0.25, query_id=qid)
    return replace(base, ts=ts)


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    led = Ledger(tmp_path / "deep" / "folder" / "ledger.sqlite")
    led.record(row("embed", "all-MiniLM-L6-v2", 0.0, "2026-01-01T10:00:00.000+00:00", out=0))
    led.record(row("llm", "gpt-4o-mini", 0.001, "2026-01-01T10:00:01.000+00:00"))
    led.record(row("llm", "gpt-4o-mini", 0.002, "2026-01-02T09:00:00.000+00:00", qid="q2"))
    led.record(row("llm", "mystery", None, "2026-01-02T09:30:00.000+00:00", qid="q2"))
    return led


def test_of_stamps_time_and_guesses_provider() -> None:
    r = LedgerRow.of("llm", "gpt-4o-mini", Usage(5, 2, 3, 0.5, 1), 1.5, query_id="abc", cached=True)
    assert r.ts.startswith("20") and r.provider == "openai" and r.cached and r.cached_tokens == 2
    assert LedgerRow.of("llm", "smollm2-135m-instruct", Usage(), 0).provider == "local"
    assert LedgerRow.of("llm", "x", Usage(), 0, provider="vllm").provider == "vllm"


def test_creates_parent_folders_and_uses_wal(ledger: Ledger) -> None:
    assert ledger.path.is_file()
    mode = ledger._db.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_rows_round_trip(ledger: Ledger) -> None:
    rows = ledger.rows()
    assert len(rows) == 4 and rows[1].model == "gpt-4o-mini" and rows[1].usd == 0.001
    assert rows[3].usd is None
    assert [r.stage for r in ledger.rows(query_id="q2")] == ["llm", "llm"]


def test_totals_by_day_model_stage(ledger: Ledger) -> None:
    days = {t.key: t for t in ledger.totals("day")}
    assert list(days) == ["2026-01-01", "2026-01-02"]
    assert days["2026-01-01"].calls == 2 and days["2026-01-01"].usd == pytest.approx(0.001)
    assert days["2026-01-01"].usd_known
    assert days["2026-01-02"].unknown_cost_calls == 1 and not days["2026-01-02"].usd_known
    models = {t.key: t for t in ledger.totals("model")}
    assert models["gpt-4o-mini"].calls == 2 and models["gpt-4o-mini"].usd == pytest.approx(0.003)
    assert models["gpt-4o-mini"].input_tokens == 200 and models["gpt-4o-mini"].output_tokens == 20
    assert models["mystery"].usd == 0 and models["mystery"].unknown_cost_calls == 1
    stages = {t.key: t.calls for t in ledger.totals("stage")}
    assert stages == {"embed": 1, "llm": 3}


def test_since_filters_rows_and_totals(ledger: Ledger) -> None:
    assert len(ledger.rows(since="2026-01-02")) == 2
    assert [t.key for t in ledger.totals("day", since="2026-01-02")] == ["2026-01-02"]
    assert ledger.totals("model", since="2030-01-01") == []
    assert len(ledger.rows(since="2026-01-02T09:15:00+00:00")) == 1


def test_bad_since_and_group_are_input_errors(ledger: Ledger) -> None:
    with pytest.raises(InputError, match="YYYY-MM-DD"):
        parse_since("yesterday")
    with pytest.raises(InputError, match="day, model, stage"):
        ledger.totals("week")  # type: ignore[arg-type]


def test_usage_of_one_query_marks_unknown(ledger: Ledger) -> None:
    u = ledger.usage("q2")
    assert u.calls == 2 and u.usd is None and u.input_tokens == 200
    assert ledger.usage("q").usd == pytest.approx(0.001)


def test_persists_across_reopen_and_threads(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with Ledger(path) as led:
        threads = [
            threading.Thread(
                target=lambda: [led.record(row("llm", "m", 0.0, "2026-01-01")) for _ in range(20)]
            )
            for _ in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    with Ledger(path) as again:
        assert len(again.rows()) == 80


def test_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(InputError, match=r"cost\.ledger"):
        Ledger(path)
