"""The cost ledger on PostgreSQL: the same rows and reports as the SQLite `Ledger`, shared by several processes.

Each `record` (a row and its prompt parts) is one committed transaction: a process killed mid-request leaves either the whole
row or none of it, never half of one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from ragcli.cost.ledger import (
    GROUP_BY,
    LEDGER_COLUMNS,
    GroupBy,
    LedgerRow,
    LedgerTotal,
    billed_usage,
    row_from_db,
    row_values,
    total_from_db,
    where_clause,
)
from ragcli.errors import InputError
from ragcli.state.postgres_database import PostgresDatabase
from ragcli.types import Usage


class PostgresLedger:
    """The ledger in the `ledger_calls` table of a PostgreSQL database. Safe to share between threads."""

    def __init__(self, db: PostgresDatabase) -> None:
        self.db = db
        self.path = db._where  # what reports show as the ledger's location (password redacted)

    def record(self, row: LedgerRow, parts: Sequence[tuple[str, int, float | None]] = ()) -> int:
        """Append one call and its prompt parts (part, tokens, dollars) in one committed transaction; its id."""
        values = row_values(row, flag=bool)
        marks = ", ".join(["%s"] * len(values))
        with self.db.transaction() as cur:
            cur.execute(f"INSERT INTO ledger_calls ({LEDGER_COLUMNS}) VALUES ({marks}) RETURNING id", values)
            call_id = int(cur.fetchone()[0])
            if parts:
                cur.executemany(
                    "INSERT INTO ledger_call_parts (call_id, part, tokens, usd) VALUES (%s, %s, %s, %s)",
                    [(call_id, part, int(tokens), usd) for part, tokens, usd in parts],
                )
        return call_id

    def rows(
        self, since: str | date | datetime | None = None, query_id: str | None = None
    ) -> list[LedgerRow]:
        """Every row (oldest first), optionally from a day or time on, or of one query."""
        where, args = where_clause(since, query_id, "%s")
        with self.db.transaction() as cur:
            cur.execute(f"SELECT {LEDGER_COLUMNS} FROM ledger_calls{where} ORDER BY id", args)
            fetched = cur.fetchall()
        return [row_from_db(r) for r in fetched]

    def totals(self, by: GroupBy = "day", since: str | date | datetime | None = None) -> list[LedgerTotal]:
        """Totals grouped by day, model or stage (sorted by the key; days oldest first)."""
        if by not in GROUP_BY:
            raise InputError(f"cannot group costs by {by!r}; use one of: {', '.join(GROUP_BY)}")
        key = {"day": "substr(ts, 1, 10)", "model": "model", "stage": "stage"}[by]
        where, args = where_clause(since, None, "%s")
        sql = (
            f"SELECT {key} AS k, count(*) FILTER (WHERE status = 'ok'), coalesce(sum(input_tokens), 0), "
            "coalesce(sum(cached_tokens), 0), coalesce(sum(output_tokens), 0), coalesce(sum(usd), 0), "
            "count(*) FILTER (WHERE usd IS NULL), count(*) FILTER (WHERE cached), coalesce(sum(latency_s), 0) "
            f"FROM ledger_calls{where} GROUP BY k ORDER BY k"
        )
        with self.db.transaction() as cur:
            cur.execute(sql, args)
            fetched = cur.fetchall()
        return [total_from_db(r) for r in fetched]

    def usage(self, query_id: str) -> Usage:
        """The summed usage of one query's billed calls (`usd=None` if any had an unknown price)."""
        return billed_usage(self.rows(query_id=query_id))

    def close(self) -> None:
        """The database is shared with the other state stores; whoever opened it closes it."""

    def __enter__(self) -> PostgresLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
