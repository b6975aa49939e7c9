"""The route log on PostgreSQL: which tier answered each query, its sources, cache links and the user's verdicts,
in the same database as the ledger, so that every process and host sees them.

With `state.dsn_env` the ledger is shared, but the route log used to stay in each host's SQLite file: a
verdict sent to one gateway host on an answer another host gave read as "no query with id ...", and `ragcli
router labels` or `ragcli train ... --from-feedback` on a third machine found no labels. `PostgresRouteLog`
runs the methods of `RouteLog` unchanged on the `ledger_routes`, `ledger_feedback`, `ledger_sources`,
`ledger_source_feedback` and `ledger_cache_links` tables (schema migrations 5 and 7).
"""

from __future__ import annotations

from typing import Any

from ragcli.generation.route_log import RouteLog
from ragcli.state.postgres_database import PostgresTables


class PostgresRouteLog(PostgresTables, RouteLog):
    """`RouteLog` in a PostgreSQL database (`PostgresTables`: its constructor, connection and `close`)."""

    tables = "ledger_"
    _link_order = "c.id"
    _connect = PostgresTables._qmark

    def _has_call(self, db: Any, query_id: str) -> bool:
        return (
            db.execute("SELECT 1 FROM ledger_calls WHERE query_id = ? LIMIT 1", (query_id,)).fetchone()
            is not None
        )
