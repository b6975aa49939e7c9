"""Labels kept beside the ledger: which tier answered each query, which sources it was given, and the user's
verdicts on both.

Tables of their own in the ledger's SQLite file: `routes` (one row per answered query: question, tier, model,
why) and `feedback` (`ragcli feedback QUERY_ID good|bad`): joined, they are outcomes a router can be trained on
(`ragcli router labels`), each line labelling the tier that answered. `sources` (the numbered sources of each
answer, by chunk id, and whether the answer cited them; never their text) and `source_feedback`
(`ragcli feedback QUERY_ID good --relevant 1,3 --irrelevant 2`): relevance labels a reranker, an embedder or a
fusion can be trained on (`ragcli train ... --from-feedback`). With the PostgreSQL state (`state.dsn_env`) the same
tables, prefixed `ledger_`, are in that database (`ragcli.state.postgres_route_log`), shared by every host.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ragcli.errors import InputError
from ragcli.state.sqlite_file import locked_transaction, open_wal

_SCHEMA = """
CREATE TABLE IF NOT EXISTS routes (
    query_id TEXT PRIMARY KEY,
    ts TEXT NOT NULL,
    question TEXT NOT NULL,
    tier TEXT NOT NULL,
    model TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    answer TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts TEXT NOT NULL,
    query_id TEXT NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('good', 'bad')),
    judge TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS feedback_query ON feedback (query_id);
CREATE TABLE IF NOT EXISTS sources (
    query_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    collection TEXT NOT NULL,
    chunk_id TEXT NOT NULL,
    cited INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (query_id, number)
);
CREATE TABLE IF NOT EXISTS source_feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts TEXT NOT NULL,
    query_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    relevant INTEGER NOT NULL CHECK (relevant IN (0, 1))
);
CREATE INDEX IF NOT EXISTS source_feedback_query ON source_feedback (query_id);
CREATE TABLE IF NOT EXISTS cache_links (
    query_id TEXT NOT NULL,
    entry_id TEXT NOT NULL,
    how TEXT NOT NULL CHECK (how IN ('stored', 'served')),
    tenant TEXT NOT NULL DEFAULT '',
    question TEXT NOT NULL DEFAULT '',
    cached_question TEXT NOT NULL DEFAULT '',
    tier TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS cache_links_query ON cache_links (query_id);
"""

_MARKER = re.compile(r"\[(\d+)\]")


@dataclass(frozen=True)
class Unjudged:
    """An answered query without a verdict: what a judge reads (its sources as `(n, collection, chunk id)`)."""

    query_id: str
    question: str
    answer: str
    sources: list[tuple[int, str, str]]


class UnknownQuery(InputError):
    """A feedback names a query id the ledger has no answer for (or none for the caller's tenant)."""


@dataclass(frozen=True)
class Judged:
    """One relevance label from feedback: the question, the chunk it was shown and whether it was relevant."""

    question: str
    collection: str
    chunk_id: str
    relevant: bool
    explicit: bool
    """Judged source by source (`--relevant` / `--irrelevant`), rather than read from a good answer's citations."""


def _create_tables(db: sqlite3.Connection) -> None:
    db.executescript(_SCHEMA)
    columns = {row[1] for row in db.execute("PRAGMA table_info(routes)")}
    if "tenant" not in columns:  # a ledger written before routes carried the tenant
        db.execute("ALTER TABLE routes ADD COLUMN tenant TEXT NOT NULL DEFAULT ''")
    if "answer" not in columns:  # ... or the answer's text (what a judge reads)
        db.execute("ALTER TABLE routes ADD COLUMN answer TEXT NOT NULL DEFAULT ''")
    if "judge" not in {row[1] for row in db.execute("PRAGMA table_info(feedback)")}:
        db.execute("ALTER TABLE feedback ADD COLUMN judge TEXT NOT NULL DEFAULT ''")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class RouteLog:
    """Route decisions and feedback in the ledger database.

    Args:
        path: The ledger's SQLite file (created when missing).

    The SQL is written once for SQLite and PostgreSQL (`?` parameters, `ON CONFLICT` upserts): the PostgreSQL
    route log (`ragcli.state.postgres_route_log`) runs the same methods on its own tables.
    """

    tables = ""
    """Prefix of the table names (PostgreSQL's are `ledger_routes`, ... beside `ledger_calls`)."""
    _link_order = "c.rowid"
    """What orders cache links oldest first."""

    def __init__(self, path: Path) -> None:
        self.path: Path | str = path
        self._lock = threading.Lock()
        # one connection in WAL mode with synchronous=NORMAL, as the ledger it sits beside: a query's two writes
        # (its route and its sources) cost ~0.1 ms instead of an fsync each
        self._db = open_wal(
            path,
            what="the route log in the ledger",
            fix="point cost.ledger at another file, or move this one away",
            schema=_create_tables,
            synchronous_normal=True,
        )

    @contextmanager
    def _connect(self) -> Iterator[Any]:
        """The connection inside one transaction (committed on exit, rolled back on an error), one thread at a
        time."""
        with locked_transaction(self._db, self._lock) as db:
            yield db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def record_route(
        self, query_id: str, question: str, tier: str, model: str, reason: str = "", tenant: str = ""
    ) -> None:
        """Remember which tier answered a query, and for which tenant (the last answer wins for one query id)."""
        if not query_id:
            return
        with self._connect() as db:
            db.execute(
                f"INSERT INTO {self.tables}routes (query_id, ts, question, tier, model, reason, tenant) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (query_id) DO UPDATE SET ts = excluded.ts, "
                "question = excluded.question, tier = excluded.tier, model = excluded.model, "
                "reason = excluded.reason, tenant = excluded.tenant",
                (query_id, _now(), question, tier, model, reason, tenant),
            )

    def record_sources(
        self, query_id: str, collection: str, sources: Sequence[tuple[int, str]], answer: str
    ) -> None:
        """Remember the answer, the numbered sources it was given (`(n, chunk id)` for each `[n]`) and which it
        cited."""
        if not query_id:
            return
        cited = {int(n) for n in _MARKER.findall(answer)}
        with self._connect() as db:
            db.execute(f"UPDATE {self.tables}routes SET answer = ? WHERE query_id = ?", (answer, query_id))
            if not sources:
                return
            db.execute(f"DELETE FROM {self.tables}sources WHERE query_id = ?", (query_id,))
            db.executemany(
                f"INSERT INTO {self.tables}sources (query_id, number, collection, chunk_id, cited) VALUES (?, ?, ?, ?, ?)",
                [(query_id, n, collection, c, int(n in cited)) for n, c in sources],
            )

    def link_cache(
        self,
        query_id: str,
        entry_id: str,
        how: str,
        tenant: str = "",
        *,
        question: str = "",
        cached_question: str = "",
        tier: str = "",
    ) -> None:
        """Remember that a query's answer was written to the cache as an entry (`stored`) or served from one
        (`served`, with the question asked, the cached question that answered it and the tier that matched): a
        later `bad` verdict on either query drops the entry, and verdicts on served hits are cache labels."""
        if not query_id or not entry_id:
            return
        with self._connect() as db:
            db.execute(
                f"INSERT INTO {self.tables}cache_links (query_id, entry_id, how, tenant, question, cached_question, tier) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (query_id, entry_id, how, tenant, question, cached_question, tier),
            )

    def judged_hits(self) -> list[dict[str, Any]]:
        """Cache hits the user judged, oldest first, as labeled pairs for `ragcli eval cache` and
        `ragcli train cache-verifier`: `text_a` the cached question, `text_b` the question asked, `label` 1 for a
        good answer and 0 for a bad one (the latest verdict wins), and the `tier` that served it."""
        with self._connect() as db:
            rows = db.execute(
                f"""
                SELECT c.cached_question, c.question, c.tier,
                    (SELECT f.verdict FROM {self.tables}feedback f WHERE f.query_id = c.query_id ORDER BY f.id DESC LIMIT 1)
                FROM {self.tables}cache_links c
                WHERE c.how = 'served' AND c.question != ''
                    AND EXISTS (SELECT 1 FROM {self.tables}feedback f WHERE f.query_id = c.query_id)
                ORDER BY {self._link_order}
                """
            ).fetchall()
        return [
            {"text_a": a, "text_b": b, "label": int(verdict == "good"), "tier": tier}
            for a, b, tier, verdict in rows
        ]

    def cache_entries_of(self, query_id: str) -> list[str]:
        """The cache entries a query's answer was written to or served from."""
        with self._connect() as db:
            rows = db.execute(
                f"SELECT DISTINCT entry_id FROM {self.tables}cache_links WHERE query_id = ? ORDER BY entry_id",
                (query_id,),
            ).fetchall()
        return [str(r[0]) for r in rows]

    def known_query(self, query_id: str) -> bool:
        """True when the ledger has a call, a route or a cache answer for this query id."""
        with self._connect() as db:
            if db.execute(
                f"SELECT 1 FROM {self.tables}routes WHERE query_id = ? LIMIT 1", (query_id,)
            ).fetchone():
                return True
            if db.execute(
                f"SELECT 1 FROM {self.tables}cache_links WHERE query_id = ? LIMIT 1", (query_id,)
            ).fetchone():
                return True
            return self._has_call(db, query_id)

    def _has_call(self, db: Any, query_id: str) -> bool:
        """True when the ledger's `calls` table (in the same SQLite file) has a row of this query."""
        has_calls = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'calls'"
        ).fetchone()
        return bool(
            has_calls and db.execute("SELECT 1 FROM calls WHERE query_id = ? LIMIT 1", (query_id,)).fetchone()
        )

    def add_feedback(
        self,
        query_id: str,
        verdict: str,
        *,
        relevant: Sequence[int] = (),
        irrelevant: Sequence[int] = (),
        tenant: str | None = None,
        judge: str = "",
    ) -> None:
        """Store a verdict (a person's, or a judge model's) on a query's answer and, optionally, on its numbered
        sources.

        Args:
            tenant: when given (the gateway's caller), only a query answered for that tenant can be judged; any
                other id reads as unknown, so a key learns nothing about another tenant's queries.
            judge: the model that gave the verdict (`ragcli router labels --judge-tier`); empty for a person.

        Raises:
            InputError: an unknown id or verdict, a source number the answer did not have, or a number given
                as both relevant and irrelevant.
        """
        if verdict not in ("good", "bad"):
            raise InputError(f"feedback must be `good` or `bad`, got {verdict!r}")
        if not self.known_query(query_id) or (tenant is not None and self._tenant_of(query_id) != tenant):
            raise UnknownQuery(
                f"no query with id {query_id!r} in the ledger {self.path}; the id ends every `ragcli query` answer "
                "(`query ID`) and is `query_id` in `ragcli query --json`"
            )
        both = sorted(set(relevant) & set(irrelevant))
        if both:
            raise InputError(f"source(s) {both} given as both --relevant and --irrelevant; give each once")
        judged = [(n, 1) for n in dict.fromkeys(relevant)] + [(n, 0) for n in dict.fromkeys(irrelevant)]
        with self._connect() as db:
            if judged:
                have = {
                    n
                    for (n,) in db.execute(
                        f"SELECT number FROM {self.tables}sources WHERE query_id = ?", (query_id,)
                    )
                }
                unknown = sorted(n for n, _ in judged if n not in have)
                if unknown:
                    raise InputError(
                        f"query {query_id!r} has no source(s) {unknown}: "
                        + (
                            f"its sources are {', '.join(map(str, sorted(have)))}"
                            if have
                            else "its sources were not recorded (an answer from the cache, or from before "
                            "ragcli recorded them)"
                        )
                    )
            now = _now()
            db.execute(
                f"INSERT INTO {self.tables}feedback (ts, query_id, verdict, judge) VALUES (?, ?, ?, ?)",
                (now, query_id, verdict, judge),
            )
            db.executemany(
                f"INSERT INTO {self.tables}source_feedback (ts, query_id, number, relevant) VALUES (?, ?, ?, ?)",
                [(now, query_id, n, r) for n, r in judged],
            )

    def _tenant_of(self, query_id: str) -> str | None:
        with self._connect() as db:
            row = db.execute(
                f"SELECT tenant FROM {self.tables}routes WHERE query_id = ?", (query_id,)
            ).fetchone()
            if row is None:  # an answer served from the cache has no route
                row = db.execute(
                    f"SELECT tenant FROM {self.tables}cache_links WHERE query_id = ? LIMIT 1", (query_id,)
                ).fetchone()
        return None if row is None else str(row[0])

    def judged_sources(self, collection: str | None = None) -> list[Judged]:
        """Relevance labels from feedback, oldest query first: every source judged one by one (the latest
        judgment wins), and the sources a good answer cited, where its sources were not judged one by one.
        A bad answer says nothing about its sources unless they were judged: it may be the model's fault."""
        where = "AND s.collection = ?" if collection is not None else ""
        args = (collection,) if collection is not None else ()
        with self._connect() as db:
            rows = db.execute(
                f"""
                SELECT r.question, s.collection, s.chunk_id, s.cited,
                    (SELECT sf.relevant FROM {self.tables}source_feedback sf
                        WHERE sf.query_id = s.query_id AND sf.number = s.number ORDER BY sf.id DESC LIMIT 1),
                    (SELECT COUNT(*) FROM {self.tables}source_feedback sf WHERE sf.query_id = s.query_id),
                    (SELECT f.verdict FROM {self.tables}feedback f WHERE f.query_id = s.query_id ORDER BY f.id DESC LIMIT 1)
                FROM {self.tables}sources s JOIN {self.tables}routes r ON r.query_id = s.query_id
                WHERE 1 = 1 {where}
                ORDER BY r.ts, s.query_id, s.number
                """,
                args,
            ).fetchall()
        out: list[Judged] = []
        for question, coll, chunk_id, cited, label, judged_any, verdict in rows:
            if label is not None:
                out.append(Judged(question, coll, chunk_id, bool(label), True))
            elif not judged_any and verdict == "good" and cited:
                out.append(Judged(question, coll, chunk_id, True, False))
        return out

    def unjudged(self, limit: int) -> list[Unjudged]:
        """Answered queries that have no verdict yet, oldest first, with the sources the answer was given."""
        with self._connect() as db:
            rows = db.execute(
                f"SELECT r.query_id, r.question, r.answer FROM {self.tables}routes r WHERE r.answer <> '' AND NOT "
                f"EXISTS (SELECT 1 FROM {self.tables}feedback f WHERE f.query_id = r.query_id) ORDER BY r.ts LIMIT ?",
                (limit,),
            ).fetchall()
            out = []
            for qid, question, answer in rows:
                sources = db.execute(
                    f"SELECT number, collection, chunk_id FROM {self.tables}sources WHERE query_id = ? ORDER BY number",
                    (qid,),
                ).fetchall()
                out.append(Unjudged(qid, question, answer, [(int(n), c, k) for n, c, k in sources]))
        return out

    def labels(self) -> list[dict[str, Any]]:
        """Outcome lines (ragcli's format) for every routed query with feedback; the latest verdict wins."""
        with self._connect() as db:
            rows = db.execute(
                f"SELECT r.question, r.tier, f.verdict FROM {self.tables}routes r JOIN {self.tables}feedback f ON f.query_id = r.query_id "
                f"WHERE f.id = (SELECT MAX(id) FROM {self.tables}feedback WHERE query_id = r.query_id) ORDER BY r.ts"
            ).fetchall()
        return [{"prompt": q, "outcomes": {tier: verdict}} for q, tier, verdict in rows]

    def write_labels(self, out: Path) -> int:
        lines = self.labels()
        out.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
        return len(lines)
