"""Read a ledger file for reports, whatever its age: columns added in later versions read as their defaults.

Reports read the SQLite file directly (read-only) so that a ledger written by an older ragcli, or by a process
that is still writing, can be reported on without migrating it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ragcli.cost.ledger import parse_since
from ragcli.errors import InputError

PART_NAMES = ("system", "history", "context", "question", "output")
"""Prompt parts in prompt order (the order a provider's prefix cache consumes them), then the output."""


@dataclass(frozen=True)
class CallRecord:
    """One ledger row with every column a report uses (defaults for columns an older ledger lacks)."""

    id: int
    ts: str
    query_id: str = ""
    stage: str = ""
    provider: str = ""
    model: str = ""
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    usd: float | None = 0.0
    latency_s: float = 0.0
    cached: bool = False
    status: str = "ok"
    tenant: str = ""
    hidden: bool = False
    preset: str = ""
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    reasoning_tokens: int = 0
    batch: bool = False
    saved_usd: float = 0.0
    """Dollars a lever saved on this call against the call it replaced (the counterfactual)."""
    lever: str = ""
    """The lever that saved them: `cache`, `routing`, `compression`, ... (empty: none)."""

    @property
    def day(self) -> str:
        return self.ts[:10]

    @property
    def billed(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class PartRecord:
    """Tokens and dollars of one prompt part (or the output) of one LLM call."""

    call_id: int
    part: str
    tokens: int
    usd: float | None


_BOOL = {"cached", "hidden", "batch"}
_FIELDS = [f for f in CallRecord.__dataclass_fields__ if f != "id"]


def _connect(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise InputError(f"no ledger at {path}; run a query first, or point cost.ledger at the right file")
    try:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise InputError(f"cannot read the ledger {path}: {exc}") from exc


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in db.execute(f"PRAGMA table_info({table})")}


def read_calls(path: Path | str, since: str | date | datetime | None = None) -> list[CallRecord]:
    """Every call of the ledger (oldest first), from `since` on."""
    start = parse_since(since)
    with _connect(Path(path)) as db:
        have = _columns(db, "calls")
        cols = [c for c in _FIELDS if c in have]
        where = " WHERE ts >= ?" if start else ""
        rows = db.execute(
            f"SELECT id, {', '.join(cols)} FROM calls{where} ORDER BY id", [start] if start else []
        ).fetchall()
    out = []
    for r in rows:
        values: dict[str, Any] = dict(zip(cols, r[1:], strict=True))
        for k in _BOOL & values.keys():
            values[k] = bool(values[k])
        for k in ("saved_usd",):
            if k in values and values[k] is None:
                values[k] = 0.0
        out.append(CallRecord(id=int(r[0]), **values))
    return out


def read_parts(path: Path | str, call_ids: set[int] | None = None) -> list[PartRecord]:
    """The prompt parts of LLM calls (none in a ledger written before parts were recorded)."""
    with _connect(Path(path)) as db:
        if not _columns(db, "call_parts"):
            return []
        rows = db.execute("SELECT call_id, part, tokens, usd FROM call_parts ORDER BY call_id").fetchall()
    return [
        PartRecord(int(r[0]), str(r[1]), int(r[2]), r[3])
        for r in rows
        if call_ids is None or r[0] in call_ids
    ]
