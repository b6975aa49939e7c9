"""The ledger keeps every usage shape, the preset, and each LLM call's prompt parts; old ledger files migrate."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ragcli.config import CostConfig, parse_config
from ragcli.cost.attribution import group_calls, group_parts, total_of
from ragcli.cost.ledger import Ledger, LedgerRow
from ragcli.cost.ledger_reader import read_calls, read_parts
from ragcli.cost.prices import PriceTable
from ragcli.ingest.plain_text_parser import PlainTextParser
from ragcli.pipelines.ingest_pipeline import ingest
from ragcli.pipelines.query_pipeline import answer
from ragcli.pipelines.recorder import Recorder
from ragcli.pipelines.stages import Stages
from ragcli.types import Usage

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "docs"
OLD_SCHEMA = """
CREATE TABLE calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL, query_id TEXT NOT NULL DEFAULT '',
    stage TEXT NOT NULL, provider TEXT NOT NULL DEFAULT '', model TEXT NOT NULL,
    input_tokens INTEGER NOT NULL DEFAULT 0, cached_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0, usd REAL, latency_s REAL NOT NULL DEFAULT 0,
    cached INTEGER NOT NULL DEFAULT 0
);
"""


def test_an_old_ledger_file_gains_the_new_columns_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
        db.execute(
            "INSERT INTO calls (ts, stage, model, input_tokens, usd) VALUES ('2025-01-01T00:00:00', 'llm', 'm', 7, 0.5)"
        )
    assert read_calls(path)[0].cache_write_tokens == 0  # reports read an old file as it is
    with Ledger(path) as led:
        (old,) = led.rows()
        assert (old.input_tokens, old.usd, old.preset, old.batch) == (7, 0.5, "", False)
        u = Usage(
            100,
            10,
            5,
            0.01,
            1,
            cache_write_tokens=50,
            cache_write_1h_tokens=20,
            reasoning_tokens=3,
            batch=True,
        )
        led.record(LedgerRow.of("llm", "m", u, 0.1, "q", preset="lean", saved_usd=0.002, lever="routing"))
        new = led.rows()[-1]
    assert (new.cache_write_tokens, new.cache_write_1h_tokens, new.reasoning_tokens, new.batch) == (
        50,
        20,
        3,
        True,
    )
    assert (new.preset, new.saved_usd, new.lever) == ("lean", 0.002, "routing")
    with sqlite3.connect(path) as db:
        assert "call_parts" in {r[0] for r in db.execute("SELECT name FROM sqlite_master")}


def test_recorder_splits_an_llm_calls_dollars_over_its_parts(tmp_path: Path) -> None:
    prices = PriceTable.load(CostConfig(use_litellm_prices=False))
    path = tmp_path / "l.sqlite"
    usage = prices.usage_for("gpt-4o-mini", 1200, 80, cached_tokens=1024)
    with Ledger(path) as led:
        rec = Recorder(led, "q1", prices=prices, preset="openai")
        with rec.stage("llm", "gpt-4o-mini") as s:
            s.usage = usage
            s.parts = {"system": 1000, "history": 0, "context": 150, "question": 30, "total": 1180}
    parts = {p.part: p for p in read_parts(path)}
    assert set(parts) == {"system", "context", "question", "output"}
    assert sum(p.tokens for n, p in parts.items() if n != "output") == 1200 and parts["output"].tokens == 80
    assert sum(p.usd or 0 for p in parts.values()) == pytest.approx(usage.usd)
    # the cached prefix is the system prompt: half price per token on gpt-4o-mini
    per_token = {n: (p.usd or 0) / p.tokens for n, p in parts.items()}
    assert per_token["system"] < per_token["context"]
    (call,) = read_calls(path)
    assert call.preset == "openai"


def test_a_query_records_its_parts_and_preset(tmp_path: Path) -> None:
    cfg = parse_config(
        {
            "name": "unit",
            "home": str(tmp_path),
            "collection": "t",
            "store": {"type": "qdrant", "location": ":memory:"},
            "embedder": {"type": "hash", "dim": 64},
            "llm": {"type": "scripted", "replies": ["The limit is 250 euros [1]."]},
        }
    )
    stages = Stages.from_config(cfg, parser=PlainTextParser())
    try:
        ingest([SAMPLES / "travel-policy.md"], stages)
        ans = answer("What is the hotel limit in Paris?", stages)
        path = stages.ledger.path
    finally:
        stages.close()
    calls = read_calls(path)
    llm = next(c for c in calls if c.stage == "llm")
    assert llm.preset == "unit" and llm.query_id == ans.query_id
    parts = group_parts(calls, read_parts(path))
    by = {g.key: g for g in parts}
    assert by["context"].input_tokens > 0 and by["output"].output_tokens == llm.output_tokens
    assert (
        sum(g.input_tokens for k, g in by.items() if k not in ("output", "unattributed")) == llm.input_tokens
    )
    assert total_of(parts).usd == pytest.approx(total_of(group_calls(calls, "stage")).usd)
