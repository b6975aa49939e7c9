"""The answer cache's entry metadata: entries, the chunks they cited, lookup counters.

`SqlCacheStore` holds the SQL, written once for SQLite and PostgreSQL (`?` parameters, no dialect's own
functions); `SqliteCacheStore` runs it on one SQLite file (WAL mode) and `PostgresCacheStore`
(`ragcli.state.postgres_cache_store`) in the shared state's database, so hosts share the cache's entries.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ragcli.generation.cache_protocols import CacheEntry, CacheScope, CacheStats, CitedChunk, Tier
from ragcli.state.sqlite_file import locked_transaction, open_wal
from ragcli.types import Citation, Usage

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id TEXT PRIMARY KEY,
    scope_key TEXT NOT NULL,
    scope TEXT NOT NULL,
    question TEXT NOT NULL,
    norm TEXT NOT NULL,
    answer TEXT NOT NULL,
    citations TEXT NOT NULL,
    model TEXT NOT NULL,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    usd REAL,
    created REAL NOT NULL,
    expires REAL,
    hits INTEGER NOT NULL DEFAULT 0,
    saved_usd REAL NOT NULL DEFAULT 0,
    vector BLOB
);
CREATE INDEX IF NOT EXISTS entries_exact ON entries (scope_key, norm);
CREATE TABLE IF NOT EXISTS cited (
    entry_id TEXT NOT NULL,
    chunk_id TEXT NOT NULL,
    doc_id TEXT NOT NULL DEFAULT '',
    content_hash TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS cited_entry ON cited (entry_id);
CREATE INDEX IF NOT EXISTS cited_chunk ON cited (chunk_id);
CREATE INDEX IF NOT EXISTS cited_doc ON cited (doc_id);
CREATE INDEX IF NOT EXISTS cited_source ON cited (source);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL DEFAULT 0);
"""

_COLS = (
    "id, scope_key, scope, question, norm, answer, citations, model, input_tokens, cached_tokens, "
    "output_tokens, usd, created, expires, hits, saved_usd, vector"
)


class SqlCacheStore:
    """The cache metadata's SQL over a connection that `_tx` opens (one transaction per call)."""

    tables = ""
    """Prefix of the table names (PostgreSQL's are `cache_entries`, `cache_cited`, `cache_counters`)."""

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        """A cursor-like object (`execute` returning rows, `executemany`) inside one transaction."""
        raise NotImplementedError
        yield

    # ---------------------------------------------------------------- writes

    def put(self, entry: CacheEntry) -> None:
        u = entry.usage
        vector = None if entry.vector is None else np.asarray(entry.vector, dtype=np.float32).tobytes()
        row = (
            entry.id,
            entry.scope_key,
            entry.scope.to_json(),
            entry.question,
            entry.norm,
            entry.answer,
            json.dumps([asdict(c) for c in entry.citations]),
            entry.model,
            u.input_tokens,
            u.cached_tokens,
            u.output_tokens,
            u.usd,
            entry.created,
            entry.expires,
            entry.hits,
            entry.saved_usd,
            vector,
        )
        cited = [(entry.id, c.chunk_id, c.doc_id, c.content_hash, c.source) for c in entry.cited]
        t = self.tables
        with self._tx() as db:
            db.execute(f"DELETE FROM {t}cited WHERE entry_id = ?", (entry.id,))
            db.execute(f"DELETE FROM {t}entries WHERE id = ?", (entry.id,))
            db.execute(f"INSERT INTO {t}entries ({_COLS}) VALUES ({','.join('?' * 17)})", row)
            if cited:
                db.executemany(
                    f"INSERT INTO {t}cited (entry_id, chunk_id, doc_id, content_hash, source) "
                    "VALUES (?, ?, ?, ?, ?)",
                    cited,
                )

    def record_lookup(self, tier: Tier | None, entry_id: str | None = None, saved_usd: float = 0.0) -> None:
        name = f"{tier}_hits" if tier else "misses"
        t = self.tables
        with self._tx() as db:
            db.execute(
                f"INSERT INTO {t}counters (name, value) VALUES (?, 1) "
                f"ON CONFLICT (name) DO UPDATE SET value = {t}counters.value + 1",
                (name,),
            )
            if tier and entry_id:
                db.execute(
                    f"UPDATE {t}entries SET hits = hits + 1, saved_usd = saved_usd + ? WHERE id = ?",
                    (float(saved_usd), entry_id),
                )

    def _delete(self, ids: list[str]) -> list[str]:
        if not ids:
            return []
        t = self.tables
        with self._tx() as db:
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                marks = ",".join("?" * len(part))
                db.execute(f"DELETE FROM {t}entries WHERE id IN ({marks})", part)
                db.execute(f"DELETE FROM {t}cited WHERE entry_id IN ({marks})", part)
        return ids

    def delete_ids(self, ids: Sequence[str]) -> list[str]:
        """Drop these entries (an answer judged bad); returns the ids that were there."""
        present = [e.id for e in self.get(ids)]
        return self._delete(present)

    def _ids(self, sql: str, args: Sequence[Any]) -> list[str]:
        with self._tx() as db:
            return [str(r[0]) for r in db.execute(sql, list(args)).fetchall()]

    def delete_citing(self, chunk_ids: Sequence[str] = (), doc_ids: Sequence[str] = ()) -> list[str]:
        found: set[str] = set()
        for column, values in (("chunk_id", list(chunk_ids)), ("doc_id", list(doc_ids))):
            for start in range(0, len(values), 500):
                part = values[start : start + 500]
                marks = ",".join("?" * len(part))
                found.update(
                    self._ids(
                        f"SELECT DISTINCT entry_id FROM {self.tables}cited WHERE {column} IN ({marks})", part
                    )
                )
        return self._delete(sorted(found))

    def delete_source(self, source: str) -> list[str]:
        folder = source.rstrip("/") + "/"
        ids = self._ids(
            f"SELECT DISTINCT entry_id FROM {self.tables}cited "
            "WHERE source = ? OR substr(source, 1, CAST(? AS INTEGER)) = ? ORDER BY entry_id",
            (source, len(folder), folder),
        )
        return self._delete(ids)

    def delete_expired(self, now: float) -> list[str]:
        return self._delete(
            self._ids(
                f"SELECT id FROM {self.tables}entries WHERE expires IS NOT NULL AND expires <= ? ORDER BY id",
                (now,),
            )
        )

    def delete_all(self) -> list[str]:
        t = self.tables
        with self._tx() as db:
            ids = [str(r[0]) for r in db.execute(f"SELECT id FROM {t}entries ORDER BY id").fetchall()]
            db.execute(f"DELETE FROM {t}entries")
            db.execute(f"DELETE FROM {t}cited")
        return ids

    # ---------------------------------------------------------------- reads

    def _rows(self, where: str, args: Sequence[Any]) -> list[CacheEntry]:
        t = self.tables
        with self._tx() as db:
            rows = db.execute(f"SELECT {_COLS} FROM {t}entries {where}", list(args)).fetchall()
            ids = [r[0] for r in rows]
            cited: dict[str, list[CitedChunk]] = {}
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                marks = ",".join("?" * len(part))
                for c in db.execute(
                    f"SELECT entry_id, chunk_id, doc_id, content_hash, source FROM {t}cited "
                    f"WHERE entry_id IN ({marks})",
                    part,
                ).fetchall():
                    cited.setdefault(c[0], []).append(CitedChunk(c[1], c[2], c[3], c[4]))
        return [self._entry(r, cited.get(r[0], [])) for r in rows]

    @staticmethod
    def _entry(r: Sequence[Any], cited: list[CitedChunk]) -> CacheEntry:
        return CacheEntry(
            id=r[0],
            scope=CacheScope.from_json(r[2]),
            question=r[3],
            norm=r[4],
            answer=r[5],
            citations=[Citation(**c) for c in json.loads(r[6])],
            cited=cited,
            model=r[7],
            usage=Usage(input_tokens=r[8], cached_tokens=r[9], output_tokens=r[10], usd=r[11], calls=1),
            created=r[12],
            expires=r[13],
            hits=r[14],
            saved_usd=r[15],
            vector=None if r[16] is None else np.frombuffer(bytes(r[16]), dtype=np.float32).copy(),
        )

    def get(self, ids: Sequence[str]) -> list[CacheEntry]:
        if not ids:
            return []
        found = {e.id: e for e in self._rows(f"WHERE id IN ({','.join('?' * len(ids))})", list(ids))}
        return [found[i] for i in ids if i in found]

    def find_exact(self, scope_key: str, norm: str, now: float) -> CacheEntry | None:
        rows = self._rows(
            "WHERE scope_key = ? AND norm = ? AND (expires IS NULL OR expires > ?) ORDER BY created DESC LIMIT 1",
            (scope_key, norm, now),
        )
        return rows[0] if rows else None

    def entries(self, limit: int = 50, scope_key: str | None = None) -> list[CacheEntry]:
        if scope_key is None:
            return self._rows("ORDER BY created DESC LIMIT ?", (limit,))
        return self._rows("WHERE scope_key = ? ORDER BY created DESC LIMIT ?", (scope_key, limit))

    def stats(self, now: float) -> CacheStats:
        t = self.tables
        with self._tx() as db:
            n, expired, saved, scopes = db.execute(
                "SELECT count(*), coalesce(sum(CASE WHEN expires IS NOT NULL AND expires <= ? THEN 1 ELSE 0 END), 0), "
                f"coalesce(sum(saved_usd), 0), count(DISTINCT scope_key) FROM {t}entries",
                (now,),
            ).fetchone()
            counters = dict(db.execute(f"SELECT name, value FROM {t}counters").fetchall())
        exact, semantic = int(counters.get("exact_hits", 0)), int(counters.get("semantic_hits", 0))
        return CacheStats(
            entries=int(n),
            expired=int(expired),
            lookups=exact + semantic + int(counters.get("misses", 0)),
            exact_hits=exact,
            semantic_hits=semantic,
            saved_usd=float(saved),
            scopes=int(scopes),
        )

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> SqlCacheStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SqliteCacheStore(SqlCacheStore):
    """Cache metadata in one SQLite file; safe to share between threads.

    Args:
        path: The database file (created with its folder).
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        self._db = open_wal(
            self.path,
            what="the answer cache",
            fix="point cache.db at another file, or move this one away",
            schema=lambda db: db.executescript(_SCHEMA),
            synchronous_normal=True,
        )

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        with locked_transaction(self._db, self._lock) as db:
            yield db

    def close(self) -> None:
        with self._lock:
            self._db.close()
