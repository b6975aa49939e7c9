"""API keys in PostgreSQL (hashed; see `ragcli.serve.key_store`), shared by every gateway process."""

from __future__ import annotations

from typing import Any

from ragcli.serve.key_store import KeyRecord
from ragcli.state.postgres_database import PostgresDatabase

_COLUMNS = (
    "key_id, name, tenant, scope, usd_per_day, requests_per_minute, pipelines, created, revoked, salt, digest"
)


def record_from_row(r: Any) -> KeyRecord:
    """A `KeyRecord` from a row of `_COLUMNS` (both back-ends store the same columns)."""
    return KeyRecord(
        key_id=r[0],
        name=r[1],
        tenant=r[2],
        scope=KeyRecord.scope_from_json(r[3]),
        usd_per_day=r[4],
        requests_per_minute=r[5],
        pipelines=tuple(p for p in (r[6] or "").split(",") if p),
        created=r[7],
        revoked=bool(r[8]),
        salt=r[9],
        digest=r[10],
    )


def row_from_record(k: KeyRecord) -> tuple[Any, ...]:
    return (
        k.key_id,
        k.name,
        k.tenant,
        k.scope_json(),
        k.usd_per_day,
        k.requests_per_minute,
        ",".join(k.pipelines),
        k.created,
        k.revoked,
        k.salt,
        k.digest,
    )


class PostgresKeyStore:
    """The `api_keys` table of a PostgreSQL database."""

    def __init__(self, db: PostgresDatabase) -> None:
        self.db = db

    def add(self, record: KeyRecord) -> None:
        with self.db.transaction() as cur:
            cur.execute(
                f"INSERT INTO api_keys ({_COLUMNS}) VALUES ({', '.join(['%s'] * 11)})",
                row_from_record(record),
            )

    def get(self, key_id: str) -> KeyRecord | None:
        with self.db.transaction() as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = %s", (key_id,))
            row = cur.fetchone()
        return record_from_row(row) if row else None

    def list(self) -> list[KeyRecord]:
        with self.db.transaction() as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created, key_id")
            rows = cur.fetchall()
        return [record_from_row(r) for r in rows]

    def revoke(self, key_id: str) -> bool:
        with self.db.transaction() as cur:
            cur.execute("UPDATE api_keys SET revoked = TRUE WHERE key_id = %s", (key_id,))
            return bool(cur.rowcount)

    def close(self) -> None:
        """The database is shared with the other state stores; whoever opened it closes it."""
