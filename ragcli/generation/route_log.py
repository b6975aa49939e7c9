"""Routing labels kept beside the ledger: which tier answered each query, and the user's verdict on it.

Two tables of their own in the ledger's SQLite file: `routes` (one row per answered query: question, tier,
model, why) and `feedback` (`ragcli feedback QUERY_ID good|bad`). Joined, they are outcomes a router can be
trained on (`ragcli router labels`): each line labels the tier that answered.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ragcli.errors import InputError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS routes (
    query_id TEXT PRIMARY KEY,
    ts TEXT NOT NULL,
    question TEXT NOT NULL,
    tier TEXT NOT NULL,
    model TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts TEXT NOT NULL,
    query_id TEXT NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('good', 'bad'))
);
CREATE INDEX IF NOT EXISTS feedback_query ON feedback (query_id);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class RouteLog:
    """Route decisions and feedback in the ledger database.

    Args:
        path: The ledger's SQLite file (created when missing).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            with db:
                yield db
        finally:
            db.close()

    def record_route(self, query_id: str, question: str, tier: str, model: str, reason: str = "") -> None:
        """Remember which tier answered a query (the last answer wins for one query id)."""
        if not query_id:
            return
        with self._lock, self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO routes (query_id, ts, question, tier, model, reason) VALUES (?, ?, ?, ?, ?, ?)",
                (query_id, _now(), question, tier, model, reason),
            )

    def known_query(self, query_id: str) -> bool:
        """True when the ledger has a call or a route for this query id."""
        with self._connect() as db:
            if db.execute("SELECT 1 FROM routes WHERE query_id = ? LIMIT 1", (query_id,)).fetchone():
                return True
            has_calls = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'calls'"
            ).fetchone()
            return bool(
                has_calls
                and db.execute("SELECT 1 FROM calls WHERE query_id = ? LIMIT 1", (query_id,)).fetchone()
            )

    def add_feedback(self, query_id: str, verdict: str) -> None:
        """Store a user's verdict on a query's answer; raise `InputError` for an unknown id or verdict."""
        if verdict not in ("good", "bad"):
            raise InputError(f"feedback must be `good` or `bad`, got {verdict!r}")
        if not self.known_query(query_id):
            raise InputError(
                f"no query with id {query_id!r} in the ledger {self.path}; the id is printed by `ragcli query` "
                "(trace) and listed by `ragcli cost`"
            )
        with self._lock, self._connect() as db:
            db.execute(
                "INSERT INTO feedback (ts, query_id, verdict) VALUES (?, ?, ?)", (_now(), query_id, verdict)
            )

    def labels(self) -> list[dict[str, Any]]:
        """Outcome lines (ragcli's format) for every routed query with feedback; the latest verdict wins."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT r.question, r.tier, f.verdict FROM routes r JOIN feedback f ON f.query_id = r.query_id "
                "WHERE f.id = (SELECT MAX(id) FROM feedback WHERE query_id = r.query_id) ORDER BY r.ts"
            ).fetchall()
        return [{"prompt": q, "outcomes": {tier: verdict}} for q, tier, verdict in rows]

    def write_labels(self, out: Path) -> int:
        lines = self.labels()
        out.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
        return len(lines)
