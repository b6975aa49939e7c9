"""Budgets: every paid call reserves before it runs; shared limits hold across threads and processes."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pytest

from ragcli.config import parse_config
from ragcli.cost.budget import QueryBudget, SqliteBudgetStore, shared_limits
from ragcli.cost.ledger import Ledger
from ragcli.cost.protocols import Limit
from ragcli.errors import BudgetExceeded
from ragcli.pipelines.recorder import Recorder
from ragcli.types import Usage


def test_cascade_of_three_paid_calls_stops_before_the_call_that_would_exceed(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    rec = Recorder(ledger, "q1", QueryBudget(max_usd=1.0))
    calls = []
    with pytest.raises(BudgetExceeded, match=r"per_query_usd \$1\.0"):
        for tier in ("cheap", "middle", "strong"):
            with rec.stage("llm", tier, estimate=Usage(usd=0.45, calls=1)) as s:
                calls.append(tier)
                s.usage = Usage(input_tokens=10, output_tokens=5, usd=0.40, calls=1)
    assert calls == ["cheap", "middle"]  # the third call was never made
    rows = ledger.rows(query_id="q1")
    assert [(r.model, r.status) for r in rows] == [("cheap", "ok"), ("middle", "ok"), ("strong", "refused")]
    refused = rows[-1]
    assert refused.input_tokens == refused.output_tokens == 0 and refused.usd == 0.0
    assert ledger.usage("q1") == Usage(20, 0, 10, pytest.approx(0.80), 2)
    assert rec.budget.spent_usd == pytest.approx(0.80) and rec.budget.held_usd == pytest.approx(0.0)
    assert rec.trace[-1].detail["refused"]


def test_unknown_price_is_refused_while_a_limit_is_set(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    rec = Recorder(ledger, "q2", QueryBudget(max_usd=5.0))
    with pytest.raises(BudgetExceeded) as info, rec.stage("llm", "mystery-model", estimate=Usage(usd=None)):
        pytest.fail("the call must not run")
    msg = str(info.value)
    assert "'mystery-model'" in msg and "cost.prices" in msg
    assert [r.status for r in ledger.rows()] == ["refused"]


def test_unknown_price_passes_without_limits() -> None:
    rec = Recorder(None, "q3", QueryBudget())
    with rec.stage("llm", "mystery-model", estimate=Usage(usd=None)) as s:
        s.usage = Usage(1, 0, 1, None, 1)
    assert rec.usage.usd is None


def test_a_failed_call_releases_its_hold_and_bills_nothing(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    budget = QueryBudget(max_usd=1.0)
    rec = Recorder(ledger, "q4", budget)
    with pytest.raises(RuntimeError), rec.stage("llm", "m", estimate=Usage(usd=0.9, calls=1)):
        raise RuntimeError("upstream broke")
    assert budget.held_usd == 0.0 and budget.spent_usd == 0.0 and ledger.rows() == []
    with rec.stage("llm", "m", estimate=Usage(usd=0.9, calls=1)) as s:  # the hold was given back
        s.usage = Usage(1, 0, 1, 0.5, 1)
    assert budget.spent_usd == pytest.approx(0.5)


def _draw(path: str, n: int, results: list[bool] | None = None) -> int:
    """Reserve $0.10 and settle it, `n` times, against a shared $1.00 daily cap; return how many got through."""
    store = SqliteBudgetStore(path)
    ok = 0
    try:
        for _ in range(n):
            budget = QueryBudget(
                store=store, limits=[Limit("day:test", 1.0, "cost.budgets.per_day_usd ($1.0)")]
            )
            try:
                hold = budget.reserve("the llm call", "m", 0.10)
            except BudgetExceeded:
                if results is not None:
                    results.append(False)
                continue
            budget.settle(hold, 0.10)
            ok += 1
            if results is not None:
                results.append(True)
    finally:
        store.close()
    return ok


def test_fifty_threads_never_exceed_a_shared_daily_cap(tmp_path: Path) -> None:
    path = str(tmp_path / "ledger.sqlite")
    results: list[bool] = []
    threads = [threading.Thread(target=_draw, args=(path, 1, results)) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 50 and sum(results) == 10
    store = SqliteBudgetStore(path)
    assert store.spent("day:test") == pytest.approx(1.0)
    store.close()


def test_processes_never_exceed_a_shared_daily_cap(tmp_path: Path) -> None:
    path = str(tmp_path / "ledger.sqlite")
    SqliteBudgetStore(path).close()  # create the schema once, before the race
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(5) as pool:
        granted = sum(pool.starmap(_draw, [(path, 10)] * 5))
    assert granted == 10
    store = SqliteBudgetStore(path)
    assert store.spent("day:test") <= 1.0 + 1e-9
    store.close()


def test_shared_limits_come_from_config() -> None:
    cost = parse_config({"cost": {"budgets": {"per_day_usd": 5, "per_tenant_day_usd": 1}}}).cost
    limits = shared_limits(cost, tenant="acme", day="2026-12-02")
    assert [lim.scope for lim in limits] == ["day:2026-12-02", "tenant:acme:day:2026-12-02"]
    assert shared_limits(cost, tenant="", day="2026-12-02")[0].usd == 5
    assert "tenant 'acme'" in limits[1].label


def test_daily_limit_refusal_names_the_limit(tmp_path: Path) -> None:
    store = SqliteBudgetStore(tmp_path / "ledger.sqlite")
    lim = Limit("day:x", 0.05, "cost.budgets.per_day_usd ($0.05)")
    budget = QueryBudget(store=store, limits=[lim])
    with pytest.raises(BudgetExceeded, match=r"per_day_usd \(\$0\.05\)"):
        budget.reserve("the llm call", "gpt-4o", 0.06)
    assert store.spent("day:x") == 0.0
    store.close()
