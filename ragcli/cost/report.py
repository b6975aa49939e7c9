"""Cost reports from the ledger: totals by day, model or stage, and a grand total.

A group with calls of unknown price says so: its dollars are a lower bound, never a silent zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ragcli.cost.ledger import GroupBy, Ledger, LedgerTotal, parse_since


@dataclass(frozen=True)
class CostReport:
    by: GroupBy
    since: str | None
    groups: list[LedgerTotal]
    total: LedgerTotal
    ledger_path: str


def _sum(groups: list[LedgerTotal]) -> LedgerTotal:
    return LedgerTotal(
        key="total",
        calls=sum(g.calls for g in groups),
        input_tokens=sum(g.input_tokens for g in groups),
        cached_tokens=sum(g.cached_tokens for g in groups),
        output_tokens=sum(g.output_tokens for g in groups),
        usd=sum(g.usd for g in groups),
        unknown_cost_calls=sum(g.unknown_cost_calls for g in groups),
        cache_hits=sum(g.cache_hits for g in groups),
        latency_s=sum(g.latency_s for g in groups),
    )


def cost_report(
    ledger: Ledger, by: GroupBy = "day", since: str | date | datetime | None = None
) -> CostReport:
    """Totals grouped by `by` from `since` on (all time if None), with a grand total."""
    groups = ledger.totals(by, since=since)
    return CostReport(by, parse_since(since), groups, _sum(groups), str(ledger.path))


def format_usd(total: LedgerTotal) -> str:
    """`$0.001234`, or `$0.001234 + unknown (2 calls)` when some calls had no known price."""
    text = f"${total.usd:.6f}"
    if total.unknown_cost_calls:
        calls = "call" if total.unknown_cost_calls == 1 else "calls"
        text += f" + unknown ({total.unknown_cost_calls} {calls})"
    return text


def _total_dict(t: LedgerTotal) -> dict[str, Any]:
    return {
        "key": t.key,
        "calls": t.calls,
        "input_tokens": t.input_tokens,
        "cached_tokens": t.cached_tokens,
        "output_tokens": t.output_tokens,
        "usd": round(t.usd, 10),
        "usd_complete": t.usd_known,
        "unknown_cost_calls": t.unknown_cost_calls,
        "cache_hits": t.cache_hits,
        "latency_s": round(t.latency_s, 4),
    }


def report_dict(report: CostReport) -> dict[str, Any]:
    """The report as plain JSON types. `usd_complete: false` means some calls had an unknown price."""
    return {
        "by": report.by,
        "since": report.since,
        "ledger": report.ledger_path,
        "groups": [_total_dict(g) for g in report.groups],
        "total": _total_dict(report.total),
    }
