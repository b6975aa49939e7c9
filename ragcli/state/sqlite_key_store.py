"""API keys in a SQLite file (the embedded default; hashed, see `ragcli.serve.key_store`)."""

from __future__ import annotations

import threading
from pathlib import Path

from ragcli.serve.key_store import KeyRecord
from ragcli.state.postgres_key_store import record_from_row, row_from_record
from ragcli.state.sqlite_file import open_wal

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    tenant TEXT NOT NULL,
    scope TEXT,
    usd_per_day REAL,
    requests_per_minute INTEGER,
    pipelines TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    salt TEXT NOT NULL,
    digest TEXT NOT NULL
);
"""
_COLUMNS = (
    "key_id, name, tenant, scope, usd_per_day, requests_per_minute, pipelines, created, revoked, salt, digest"
)


class SqliteKeyStore:
    """The `api_keys` table of a SQLite file (WAL mode). Safe to share between threads."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        self._db = open_wal(
            self.path,
            what="the key store",
            fix="move the file away or set state.keys",
            schema=lambda db: db.executescript(_SCHEMA),
        )

    def add(self, record: KeyRecord) -> None:
        values = row_from_record(record)
        with self._lock:
            self._db.execute(f"INSERT INTO api_keys ({_COLUMNS}) VALUES ({', '.join(['?'] * 11)})", values)

    def get(self, key_id: str) -> KeyRecord | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = ?", (key_id,)).fetchone()
        return record_from_row(row) if row else None

    def list(self) -> list[KeyRecord]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created, key_id").fetchall()
        return [record_from_row(r) for r in rows]

    def revoke(self, key_id: str) -> bool:
        with self._lock:
            cur = self._db.execute("UPDATE api_keys SET revoked = 1 WHERE key_id = ?", (key_id,))
            return bool(cur.rowcount)

    def close(self) -> None:
        with self._lock:
            self._db.close()
