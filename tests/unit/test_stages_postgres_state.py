"""With `state.dsn_env`, the query path's ledger and budgets live in PostgreSQL (shared by every process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragcli.config import parse_config
from ragcli.generation.scripted_llm import ScriptedLLM
from ragcli.ingest.plain_text_parser import PlainTextParser
from ragcli.pipelines.ingest_pipeline import ingest
from ragcli.pipelines.query_pipeline import QueryOptions, answer
from ragcli.pipelines.stages import Stages
from tests.unit.postgres_support import pg_admin_dsn, pg_dsn  # noqa: F401

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "docs"


def test_query_ledger_and_daily_budget_use_postgres(
    pg_dsn: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("RAGCLI_PG_DSN", pg_dsn)
    cfg = parse_config(
        {
            "store": {"type": "qdrant", "location": ":memory:"},
            "embedder": {"type": "hash", "dim": 64},
            "llm": {"type": "scripted", "replies": ["The limit is 250 euros [1]."]},
            "state": {"dsn_env": "RAGCLI_PG_DSN"},
            "cost": {"budgets": {"per_day_usd": 1.0}, "ledger": str(tmp_path / "unused.sqlite")},
        }
    )
    stages = Stages.from_config(
        cfg, parser=PlainTextParser(), llm=ScriptedLLM(["The limit is 250 euros [1]."])
    )
    try:
        ingest([SAMPLES / "travel-policy.md"], stages)
        ans = answer("What is the hotel limit?", stages, QueryOptions(tenant="acme"))
        assert ans.text.startswith("The limit")
        assert type(stages.ledger).__name__ == "PostgresLedger"
        assert type(stages.budget_store).__name__ == "PostgresBudgetStore"
        rows = stages.ledger.rows(query_id=ans.query_id)
        assert {r.stage for r in rows} >= {"embed_query", "llm"} and {r.tenant for r in rows} == {"acme"}
    finally:
        stages.close()
