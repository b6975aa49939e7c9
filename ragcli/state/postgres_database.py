"""A PostgreSQL database for ragcli's shared state: a small connection pool and versioned schema migrations.

Several gateway processes (and hosts) share one database. The schema is versioned in `ragcli_schema` (one row per
applied migration); `migrate()` applies what is missing under a transaction-scoped advisory lock, so processes
that start together apply each migration exactly once. psycopg 3 is imported here only, on first use.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ragcli.errors import BackendError, ConfigError, InputError

log = logging.getLogger(__name__)

_MIGRATION_LOCK = 0x7261_6763  # "ragc": the advisory lock id every ragcli process takes to migrate

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "ledger: one row per model call",
        """
        CREATE TABLE IF NOT EXISTS ledger_calls (
            id BIGSERIAL PRIMARY KEY,
            ts TEXT NOT NULL,
            query_id TEXT NOT NULL DEFAULT '',
            stage TEXT NOT NULL,
            provider TEXT NOT NULL DEFAULT '',
            model TEXT NOT NULL,
            input_tokens BIGINT NOT NULL DEFAULT 0,
            cached_tokens BIGINT NOT NULL DEFAULT 0,
            output_tokens BIGINT NOT NULL DEFAULT 0,
            usd DOUBLE PRECISION,
            latency_s DOUBLE PRECISION NOT NULL DEFAULT 0,
            cached BOOLEAN NOT NULL DEFAULT FALSE,
            status TEXT NOT NULL DEFAULT 'ok',
            tenant TEXT NOT NULL DEFAULT '',
            hidden BOOLEAN NOT NULL DEFAULT FALSE
        );
        CREATE INDEX IF NOT EXISTS ledger_calls_ts ON ledger_calls (ts);
        CREATE INDEX IF NOT EXISTS ledger_calls_query ON ledger_calls (query_id);
        """,
    ),
    (
        2,
        "budgets: holds against shared dollar limits",
        """
        CREATE TABLE IF NOT EXISTS budget_holds (
            hold_id TEXT NOT NULL,
            scope TEXT NOT NULL,
            usd NUMERIC(20, 12) NOT NULL,
            ts TIMESTAMPTZ NOT NULL DEFAULT now(),
            PRIMARY KEY (hold_id, scope)
        );
        CREATE INDEX IF NOT EXISTS budget_holds_scope ON budget_holds (scope);
        CREATE TABLE IF NOT EXISTS budget_totals (
            scope TEXT PRIMARY KEY,
            usd NUMERIC(20, 12) NOT NULL DEFAULT 0
        );
        """,
    ),
    (
        3,
        "api keys: hashed, with tenant scope and limits",
        """
        CREATE TABLE IF NOT EXISTS api_keys (
            key_id TEXT PRIMARY KEY,
            name TEXT NOT NULL DEFAULT '',
            tenant TEXT NOT NULL,
            scope TEXT,
            usd_per_day DOUBLE PRECISION,
            requests_per_minute INTEGER,
            pipelines TEXT NOT NULL DEFAULT '',
            created TEXT NOT NULL,
            revoked BOOLEAN NOT NULL DEFAULT FALSE,
            salt TEXT NOT NULL,
            digest TEXT NOT NULL
        );
        """,
    ),
    (
        4,
        "ledger: every usage shape, preset, lever savings; prompt parts of each LLM call",
        """
        ALTER TABLE ledger_calls
            ADD COLUMN IF NOT EXISTS cache_write_tokens BIGINT NOT NULL DEFAULT 0,
            ADD COLUMN IF NOT EXISTS cache_write_1h_tokens BIGINT NOT NULL DEFAULT 0,
            ADD COLUMN IF NOT EXISTS reasoning_tokens BIGINT NOT NULL DEFAULT 0,
            ADD COLUMN IF NOT EXISTS batch BOOLEAN NOT NULL DEFAULT FALSE,
            ADD COLUMN IF NOT EXISTS preset TEXT NOT NULL DEFAULT '',
            ADD COLUMN IF NOT EXISTS saved_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
            ADD COLUMN IF NOT EXISTS lever TEXT NOT NULL DEFAULT '';
        CREATE TABLE IF NOT EXISTS ledger_call_parts (
            call_id BIGINT NOT NULL REFERENCES ledger_calls (id),
            part TEXT NOT NULL,
            tokens BIGINT NOT NULL DEFAULT 0,
            usd DOUBLE PRECISION
        );
        CREATE INDEX IF NOT EXISTS ledger_call_parts_call ON ledger_call_parts (call_id);
        """,
    ),
    (
        5,
        "route log: tiers, sources, cache links and feedback of each query",
        """
        CREATE TABLE IF NOT EXISTS ledger_routes (
            query_id TEXT PRIMARY KEY,
            ts TEXT NOT NULL,
            question TEXT NOT NULL,
            tier TEXT NOT NULL,
            model TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            tenant TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE IF NOT EXISTS ledger_feedback (
            id BIGSERIAL PRIMARY KEY,
            ts TEXT NOT NULL,
            query_id TEXT NOT NULL,
            verdict TEXT NOT NULL CHECK (verdict IN ('good', 'bad'))
        );
        CREATE INDEX IF NOT EXISTS ledger_feedback_query ON ledger_feedback (query_id);
        CREATE TABLE IF NOT EXISTS ledger_sources (
            query_id TEXT NOT NULL,
            number INTEGER NOT NULL,
            collection TEXT NOT NULL,
            chunk_id TEXT NOT NULL,
            cited INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (query_id, number)
        );
        CREATE TABLE IF NOT EXISTS ledger_source_feedback (
            id BIGSERIAL PRIMARY KEY,
            ts TEXT NOT NULL,
            query_id TEXT NOT NULL,
            number INTEGER NOT NULL,
            relevant INTEGER NOT NULL CHECK (relevant IN (0, 1))
        );
        CREATE INDEX IF NOT EXISTS ledger_source_feedback_query ON ledger_source_feedback (query_id);
        CREATE TABLE IF NOT EXISTS ledger_cache_links (
            id BIGSERIAL PRIMARY KEY,
            query_id TEXT NOT NULL,
            entry_id TEXT NOT NULL,
            how TEXT NOT NULL CHECK (how IN ('stored', 'served')),
            tenant TEXT NOT NULL DEFAULT '',
            question TEXT NOT NULL DEFAULT '',
            cached_question TEXT NOT NULL DEFAULT '',
            tier TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX IF NOT EXISTS ledger_cache_links_query ON ledger_cache_links (query_id);
        """,
    ),
    (
        6,
        "answer cache: entries, the chunks they cited, lookup counters",
        """
        CREATE TABLE IF NOT EXISTS cache_entries (
            id TEXT PRIMARY KEY,
            scope_key TEXT NOT NULL,
            scope TEXT NOT NULL,
            question TEXT NOT NULL,
            norm TEXT NOT NULL,
            answer TEXT NOT NULL,
            citations TEXT NOT NULL,
            model TEXT NOT NULL,
            input_tokens BIGINT NOT NULL DEFAULT 0,
            cached_tokens BIGINT NOT NULL DEFAULT 0,
            output_tokens BIGINT NOT NULL DEFAULT 0,
            usd DOUBLE PRECISION,
            created DOUBLE PRECISION NOT NULL,
            expires DOUBLE PRECISION,
            hits BIGINT NOT NULL DEFAULT 0,
            saved_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
            vector BYTEA
        );
        CREATE INDEX IF NOT EXISTS cache_entries_exact ON cache_entries (scope_key, norm);
        CREATE TABLE IF NOT EXISTS cache_cited (
            entry_id TEXT NOT NULL,
            chunk_id TEXT NOT NULL,
            doc_id TEXT NOT NULL DEFAULT '',
            content_hash TEXT NOT NULL DEFAULT '',
            source TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX IF NOT EXISTS cache_cited_entry ON cache_cited (entry_id);
        CREATE INDEX IF NOT EXISTS cache_cited_chunk ON cache_cited (chunk_id);
        CREATE INDEX IF NOT EXISTS cache_cited_doc ON cache_cited (doc_id);
        CREATE INDEX IF NOT EXISTS cache_cited_source ON cache_cited (source);
        CREATE TABLE IF NOT EXISTS cache_counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL DEFAULT 0);
        """,
    ),
    (
        7,
        "route log: the answer's text, and which model gave a verdict",
        """
        ALTER TABLE ledger_routes ADD COLUMN IF NOT EXISTS answer TEXT NOT NULL DEFAULT '';
        ALTER TABLE ledger_feedback ADD COLUMN IF NOT EXISTS judge TEXT NOT NULL DEFAULT '';
        """,
    ),
)


class QmarkCursor:
    """A psycopg cursor that takes SQLite-style `?` parameters: the route log and the cache metadata run one SQL
    text on both databases (theirs holds no literal `?` or `%`)."""

    def __init__(self, cur: Any) -> None:
        self._cur = cur

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any:
        self._cur.execute(sql.replace("?", "%s"), tuple(args))
        return self._cur

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._cur.executemany(sql.replace("?", "%s"), [tuple(r) for r in rows])


class PostgresTables:
    """A store whose tables live in the state database and whose SQL (shared with its SQLite twin) takes `?`
    parameters: one pooled connection and transaction per `_qmark()`. Safe to share between threads.

    Args:
        db: the state database (migrated on open).
        owned: close `db` with the store (a command that opened the database for it alone).
    """

    def __init__(self, db: PostgresDatabase, *, owned: bool = False) -> None:
        self.db = db
        self.path: Path | str = db._where  # what messages show as its location (password redacted)
        self._owned = owned

    @contextmanager
    def _qmark(self) -> Iterator[QmarkCursor]:
        with self.db.transaction() as cur:
            yield QmarkCursor(cur)

    def close(self) -> None:
        if self._owned:
            self.db.close()


def dsn_from_env(dsn_env: str) -> str:
    """The DSN held by an environment variable; a `ConfigError` that names the variable when it is unset."""
    dsn = os.environ.get(dsn_env, "").strip()
    if not dsn:
        raise ConfigError(
            f"state.dsn_env names the environment variable {dsn_env}, which is not set; export it with a "
            "PostgreSQL DSN (e.g. postgresql://ragcli@127.0.0.1:5432/ragcli), or remove state.dsn_env to keep "
            "the embedded SQLite state"
        )
    return dsn


def redact_dsn(dsn: str) -> str:
    """A DSN safe to show: the password (URL or key=value form) replaced by ***."""
    import re

    dsn = re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", dsn)
    return re.sub(r"(password\s*=\s*)(\S+)", r"\1***", dsn, flags=re.I)


class PostgresDatabase:
    """A pool of psycopg connections to one database, migrated to the current schema on open.

    Args:
        dsn: a libpq connection string or URL (taken from the environment: see `dsn_from_env`).
        max_connections: connections kept at most; callers beyond it wait for one to come back.
    """

    def __init__(self, dsn: str, *, max_connections: int = 8, connect_timeout_s: int = 10) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, got {max_connections}")
        try:
            import psycopg
        except ImportError as exc:
            raise InputError(
                "PostgreSQL state needs psycopg 3; run `pip install 'ragcli[postgres]'`"
            ) from exc
        self._psycopg: Any = psycopg
        self._dsn = dsn
        self._where = redact_dsn(dsn)
        self._timeout = connect_timeout_s
        self._max = max_connections
        self._idle: queue.LifoQueue[Any] = queue.LifoQueue()
        self._made = 0
        self._lock = threading.Lock()
        self._closed = False
        self.migrate()

    def _connect(self) -> Any:
        try:
            return self._psycopg.connect(self._dsn, connect_timeout=self._timeout, autocommit=False)
        except self._psycopg.Error as exc:
            # libpq's message may quote the DSN; show the redacted form only.
            raise BackendError(
                f"cannot connect to PostgreSQL at {self._where}: {redact_dsn(str(exc)).strip()}; check that the "
                "server runs and the DSN (state.dsn_env) is right",
                retryable=True,
            ) from None

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A cursor in one transaction: committed on success, rolled back on any error."""
        conn = self._acquire()
        try:
            with conn.cursor() as cur:
                yield cur
            conn.commit()
        except BaseException:
            try:
                conn.rollback()
            except self._psycopg.Error:
                conn.close()
                conn = None
            raise
        finally:
            self._give_back(conn)

    def _acquire(self) -> Any:
        if self._closed:
            raise BackendError(f"the PostgreSQL state at {self._where} is closed")
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            with self._lock:
                make = self._made < self._max
                if make:
                    self._made += 1
            if not make:
                return self._idle.get()
            try:
                return self._connect()
            except BaseException:
                with self._lock:
                    self._made -= 1
                raise
        if conn.closed or conn.broken:
            with self._lock:
                self._made -= 1
            return self._acquire()
        return conn

    def _give_back(self, conn: Any) -> None:
        if conn is None or conn.closed or self._closed:
            with self._lock:
                self._made -= 1
            if conn is not None and not conn.closed:
                conn.close()
            return
        self._idle.put(conn)

    def schema_version(self) -> int:
        with self.transaction() as cur:
            cur.execute("SELECT to_regclass('ragcli_schema') IS NOT NULL")
            if not cur.fetchone()[0]:
                return 0
            cur.execute("SELECT coalesce(max(version), 0) FROM ragcli_schema")
            return int(cur.fetchone()[0])

    def migrate(self) -> list[int]:
        """Apply the migrations this database lacks, in order, each once; return the versions applied."""
        applied: list[int] = []
        with self.transaction() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            cur.execute(
                "CREATE TABLE IF NOT EXISTS ragcli_schema ("
                " version INTEGER PRIMARY KEY, description TEXT NOT NULL,"
                " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            cur.execute("SELECT coalesce(max(version), 0) FROM ragcli_schema")
            current = int(cur.fetchone()[0])
            newest = MIGRATIONS[-1][0]
            if current > newest:
                raise ConfigError(
                    f"the PostgreSQL state at {self._where} is at schema version {current}, newer than this "
                    f"ragcli knows ({newest}); upgrade ragcli"
                )
            for version, description, sql in MIGRATIONS:
                if version <= current:
                    continue
                cur.execute(sql)
                cur.execute(
                    "INSERT INTO ragcli_schema (version, description) VALUES (%s, %s)", (version, description)
                )
                applied.append(version)
        if applied:
            log.info("PostgreSQL state at %s migrated to schema version %d", self._where, applied[-1])
        return applied

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                break
            conn.close()
