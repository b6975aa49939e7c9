"""The route log on PostgreSQL: which tier answered each query, its sources, cache links and the user's verdicts,
in the same database as the ledger, so that every process and host sees them.

With `state.dsn_env` the ledger is shared, but the route log used to stay in each host's SQLite file: a
verdict sent to one gateway host on an answer another host gave read as "no query with id ...", and `ragcli
router labels` or `ragcli train ... --from-feedback` on a third machine found no labels. `PostgresRouteLog`
runs the methods of `RouteLog` unchanged on the `ledger_routes`, `ledger_feedback`, `ledger_sources`,
`ledger_source_feedback` and `ledger_cache_links` tables (schema migration 5).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ragcli.generation.route_log import RouteLog
from ragcli.state.postgres_database import PostgresDatabase, QmarkCursor


class PostgresRouteLog(RouteLog):
    """`RouteLog` in a PostgreSQL database. Safe to share between threads (one pooled connection per call).

    Args:
        db: the state database (migrated on open).
        owned: close `db` with the route log (a command that opened the database for it alone).
    """

    tables = "ledger_"
    _link_order = "c.id"

    def __init__(self, db: PostgresDatabase, *, owned: bool = False) -> None:
        self.db = db
        self.path = db._where  # what messages show as its location (password redacted)
        self._owned = owned

    @contextmanager
    def _connect(self) -> Iterator[Any]:
        with self.db.transaction() as cur:
            yield QmarkCursor(cur)

    def _has_call(self, db: Any, query_id: str) -> bool:
        return (
            db.execute("SELECT 1 FROM ledger_calls WHERE query_id = ? LIMIT 1", (query_id,)).fetchone()
            is not None
        )

    def close(self) -> None:
        if self._owned:
            self.db.close()
