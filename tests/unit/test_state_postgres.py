"""Shared state on a real PostgreSQL (a throwaway cluster on loopback, see postgres_support.py): migrations, the
ledger, API keys, and budgets that stay exact when several threads and processes draw on one limit."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ragcli.cost.ledger import LedgerRow
from ragcli.cost.protocols import Limit
from ragcli.errors import BudgetExceeded, ConfigError
from ragcli.serve.key_store import issue_key, split_key, verify
from ragcli.types import Usage
from tests.unit.postgres_support import pg_admin_dsn, pg_dsn  # noqa: F401

psycopg = pytest.importorskip("psycopg")

from ragcli.state.postgres_budget_store import PostgresBudgetStore  # noqa: E402
from ragcli.state.postgres_database import MIGRATIONS, PostgresDatabase, dsn_from_env, redact_dsn  # noqa: E402
from ragcli.state.postgres_key_store import PostgresKeyStore  # noqa: E402
from ragcli.state.postgres_ledger import PostgresLedger  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def test_migrations_apply_once_even_when_processes_start_together(pg_dsn: str) -> None:  # noqa: F811
    dbs: list[PostgresDatabase] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            dbs.append(PostgresDatabase(pg_dsn, max_connections=2))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(dbs) == 6
    assert dbs[0].schema_version() == MIGRATIONS[-1][0]
    assert dbs[0].migrate() == []
    with dbs[0].transaction() as cur:
        cur.execute("SELECT count(*) FROM ragcli_schema")
        assert cur.fetchone()[0] == len(MIGRATIONS)
    for db in dbs:
        db.close()


def test_a_newer_schema_is_refused(pg_dsn: str) -> None:  # noqa: F811
    db = PostgresDatabase(pg_dsn)
    with db.transaction() as cur:
        cur.execute("INSERT INTO ragcli_schema (version, description) VALUES (999, 'future')")
    with pytest.raises(ConfigError, match="newer than this ragcli"):
        PostgresDatabase(pg_dsn)
    db.close()


def test_dsn_from_env_and_redaction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_DSN", raising=False)
    with pytest.raises(ConfigError, match="NOPE_DSN"):
        dsn_from_env("NOPE_DSN")
    assert redact_dsn("postgresql://u:hunter2@h:5/db") == "postgresql://u:***@h:5/db"
    assert "hunter2" not in redact_dsn("host=h password=hunter2 dbname=x")


def test_ledger_rows_totals_and_usage(pg_dsn: str) -> None:  # noqa: F811
    db = PostgresDatabase(pg_dsn)
    ledger = PostgresLedger(db)
    ledger.record(LedgerRow.of("embed_query", "hash-64", Usage(5, 0, 0, 0.0, 1), 0.01, "q1", tenant="acme"))
    call_id = ledger.record(
        LedgerRow.of(
            "llm", "gpt-4o-mini", Usage(100, 20, 10, 0.25, 1), 0.5, "q1", provider="openai", preset="p"
        ),
        [("system", 10, 0.01), ("context", 90, 0.2)],
    )
    ledger.record(LedgerRow.of("llm", "mystery", Usage(1, 0, 1, None, 1), 0.1, "q2"))
    rows = ledger.rows()
    assert [r.stage for r in rows] == ["embed_query", "llm", "llm"] and rows[0].tenant == "acme"
    assert ledger.usage("q1") == Usage(105, 20, 10, 0.25, 2)
    assert ledger.usage("q2").usd is None
    by_model = {t.key: t for t in ledger.totals("model")}
    assert by_model["gpt-4o-mini"].usd == 0.25 and by_model["mystery"].unknown_cost_calls == 1
    assert ledger.rows(query_id="q2")[0].model == "mystery" and rows[1].preset == "p"
    with db.transaction() as cur:
        cur.execute("SELECT part, tokens FROM ledger_call_parts WHERE call_id = %s ORDER BY part", (call_id,))
        assert cur.fetchall() == [("context", 90), ("system", 10)]
    db.close()


def test_an_older_schema_is_migrated_and_its_rows_kept(pg_dsn: str) -> None:  # noqa: F811
    with psycopg.connect(pg_dsn) as conn:  # a database left at schema version 3 by an older ragcli
        conn.execute(
            "CREATE TABLE ragcli_schema (version INTEGER PRIMARY KEY, description TEXT NOT NULL,"
            " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        for version, description, sql in MIGRATIONS[:3]:
            conn.execute(sql)
            conn.execute("INSERT INTO ragcli_schema VALUES (%s, %s)", (version, description))
        conn.execute(
            "INSERT INTO ledger_calls (ts, stage, model, usd) VALUES ('2026-01-01', 'llm', 'old', 0.5)"
        )
    db = PostgresDatabase(pg_dsn)
    assert db.schema_version() == MIGRATIONS[-1][0]
    old = PostgresLedger(db).rows()
    assert [(r.model, r.usd, r.preset, r.saved_usd) for r in old] == [("old", 0.5, "", 0.0)]
    db.close()


def test_keys_are_hashed_listed_and_revoked(pg_dsn: str) -> None:  # noqa: F811
    db = PostgresDatabase(pg_dsn)
    keys = PostgresKeyStore(db)
    record, full = issue_key("acme", {"tenant": "acme"}, usd_per_day=1.5, requests_per_minute=10)
    keys.add(record)
    kid, secret = split_key(full) or ("", "")
    got = keys.get(kid)
    assert got is not None and verify(got, secret) and not verify(got, secret + "x")
    assert got.scope == {"tenant": "acme"} and got.usd_per_day == 1.5
    with db.transaction() as cur:
        cur.execute("SELECT * FROM api_keys")
        stored = repr(cur.fetchall())
    assert secret not in stored and full not in stored
    assert keys.revoke(kid) and not keys.revoke("000000000000")
    assert keys.list()[0].revoked
    db.close()


def test_budget_store_reserve_settle_release(pg_dsn: str) -> None:  # noqa: F811
    db = PostgresDatabase(pg_dsn)
    store = PostgresBudgetStore(db)
    limits = [Limit("day:x", 1.0, "per day ($1)"), Limit("tenant:a:day:x", 0.5, "tenant a ($0.5)")]
    store.reserve("h1", limits, 0.4)
    with pytest.raises(BudgetExceeded, match=r"tenant a \(\$0.5\)"):
        store.reserve("h2", limits, 0.2)
    assert store.spent("day:x") == pytest.approx(0.4)  # h2 held nothing: all or none
    store.settle("h1", 0.1)
    store.reserve("h2", limits, 0.2)
    store.release("h2")
    assert store.spent("day:x") == pytest.approx(0.1) and store.spent("tenant:a:day:x") == pytest.approx(0.1)
    assert store.spent("never") == 0.0
    db.close()


def test_threads_never_spend_past_a_shared_limit(pg_dsn: str) -> None:  # noqa: F811
    db = PostgresDatabase(pg_dsn, max_connections=8)
    store = PostgresBudgetStore(db)
    limit = [Limit("day:t", 0.50, "per day ($0.50)")]
    settled: list[float] = []
    lock = threading.Lock()

    def spend(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(40):
            hold = uuid.uuid4().hex
            estimate = rng.choice([0.01, 0.02, 0.05])
            try:
                store.reserve(hold, limit, estimate)
            except BudgetExceeded:
                continue
            actual = round(estimate * rng.choice([0.5, 1.0]), 6)
            store.settle(hold, actual)
            with lock:
                settled.append(actual)

    threads = [threading.Thread(target=spend, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    spent = store.spent("day:t")
    assert spent <= 0.50 + 1e-12
    assert round(spent, 9) == round(sum(settled), 9)
    db.close()


def test_gateway_processes_on_one_database_share_an_exact_budget(
    pg_dsn: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Three gateway processes bill one key with a daily limit: never past it, and every cent is in the ledger."""
    pytest.importorskip("fastapi")
    db = PostgresDatabase(pg_dsn)
    record, key = issue_key("acme", {"tenant": "acme"}, usd_per_day=0.004)
    PostgresKeyStore(db).add(record)
    env = {**os.environ, "RAGCLI_PG_DSN": pg_dsn, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.unit.gateway_worker", str(tmp_path / f"w{i}"), key, "12"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    ok = sum(r.get("200", 0) for r in results)
    refused = sum(r.get("429", 0) for r in results)
    assert ok + refused == 36 and ok > 0 and refused > 0
    day = datetime.now(UTC).date().isoformat()
    spent = PostgresBudgetStore(db).spent(f"key:{record.key_id}:day:{day}")
    rows = PostgresLedger(db).rows()
    billed = sum(r.usd or 0.0 for r in rows if r.status == "ok")
    assert sum(1 for r in rows if r.stage == "llm") == ok
    assert spent <= 0.004 + 1e-12
    assert round(spent, 9) == round(billed, 9)  # exact: to a billionth of a dollar, not just the cent
    db.close()
