"""The cost ledger: one SQLite row per model call (embedding, reranker, LLM, ...), with tokens, dollars and latency.

What counts as a row: one row per *billed* call, i.e. per call that returned a result. A provider attempt that
failed (HTTP 429/5xx, a timeout, a malformed body) is retried by the adapter and is not a row: providers do not
bill failed requests, and its token counts are unknown. The adapter logs each failed attempt at WARNING level.
A cache hit is a row with `cached=True` and its (usually zero) dollars, so the saving shows in the report.

A row keeps every usage shape (cache reads and 5-minute/1-hour writes, reasoning tokens, batch), the preset that
made it, and what a lever saved against the call it replaced (`saved_usd`, `lever`); an LLM call's prompt parts
(system, history, context, question, output: tokens and dollars) go to the `call_parts` table. Columns added
after a ledger file was created are added to it when it is opened (ALTER TABLE ADD COLUMN).

`usd=None` means the price of the model is unknown: reports show it as unknown, never as zero.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ragcli.errors import InputError
from ragcli.state.sqlite_file import open_wal
from ragcli.types import Usage

if TYPE_CHECKING:
    from ragcli.config import PipelineConfig

GroupBy = Literal["day", "model", "stage"]
GROUP_BY: tuple[GroupBy, ...] = ("day", "model", "stage")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts TEXT NOT NULL,
    query_id TEXT NOT NULL DEFAULT '',
    stage TEXT NOT NULL,
    provider TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    usd REAL,
    latency_s REAL NOT NULL DEFAULT 0,
    cached INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'ok',
    tenant TEXT NOT NULL DEFAULT '',
    hidden INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS calls_ts ON calls (ts);
CREATE INDEX IF NOT EXISTS calls_query ON calls (query_id);
"""

_COLUMNS = (
    "ts, query_id, stage, provider, model, input_tokens, cached_tokens, output_tokens, usd, latency_s, cached, "
    "status, tenant, hidden, cache_write_tokens, cache_write_1h_tokens, reasoning_tokens, batch, preset, "
    "saved_usd, lever"
)
LEDGER_COLUMNS = _COLUMNS
"""The columns of a call row, in the order `row_values` gives and `row_from_db` reads (SQLite and PostgreSQL)."""


def row_values(row: LedgerRow, flag: Callable[[bool], Any] = int) -> tuple[Any, ...]:
    """`row`'s values in `LEDGER_COLUMNS` order; `flag` stores a boolean (SQLite: `int`, PostgreSQL: `bool`)."""
    return (
        row.ts,
        row.query_id,
        row.stage,
        row.provider,
        row.model,
        int(row.input_tokens),
        int(row.cached_tokens),
        int(row.output_tokens),
        row.usd,
        float(row.latency_s),
        flag(row.cached),
        row.status,
        row.tenant,
        flag(row.hidden),
        int(row.cache_write_tokens),
        int(row.cache_write_1h_tokens),
        int(row.reasoning_tokens),
        flag(row.batch),
        row.preset,
        float(row.saved_usd),
        row.lever,
    )


def row_from_db(r: Sequence[Any]) -> LedgerRow:
    """A row read back in `LEDGER_COLUMNS` order (either database's types)."""
    return LedgerRow(
        ts=r[0],
        query_id=r[1],
        stage=r[2],
        provider=r[3],
        model=r[4],
        input_tokens=int(r[5]),
        cached_tokens=int(r[6]),
        output_tokens=int(r[7]),
        usd=r[8],
        latency_s=float(r[9]),
        cached=bool(r[10]),
        status=r[11],
        tenant=r[12],
        hidden=bool(r[13]),
        cache_write_tokens=int(r[14]),
        cache_write_1h_tokens=int(r[15]),
        reasoning_tokens=int(r[16]),
        batch=bool(r[17]),
        preset=r[18],
        saved_usd=float(r[19]),
        lever=r[20],
    )


_ADDED_COLUMNS = {  # columns added after the first release: created in older ledger files on open
    "status": "TEXT NOT NULL DEFAULT 'ok'",
    "tenant": "TEXT NOT NULL DEFAULT ''",
    "hidden": "INTEGER NOT NULL DEFAULT 0",
    # issue 13: every usage shape, and what attribution needs
    "cache_write_tokens": "INTEGER NOT NULL DEFAULT 0",
    "cache_write_1h_tokens": "INTEGER NOT NULL DEFAULT 0",
    "reasoning_tokens": "INTEGER NOT NULL DEFAULT 0",
    "batch": "INTEGER NOT NULL DEFAULT 0",
    "preset": "TEXT NOT NULL DEFAULT ''",
    "saved_usd": "REAL NOT NULL DEFAULT 0",
    "lever": "TEXT NOT NULL DEFAULT ''",
}
_PARTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS call_parts (
    call_id INTEGER NOT NULL,
    part TEXT NOT NULL,
    tokens INTEGER NOT NULL DEFAULT 0,
    usd REAL
);
CREATE INDEX IF NOT EXISTS call_parts_call ON call_parts (call_id);
"""


def ledger_path(cfg: PipelineConfig) -> Path:
    """The ledger file of a config: `cost.ledger`, or `<home>/ledger.sqlite`."""
    return Path(cfg.cost.ledger).expanduser() if cfg.cost.ledger else cfg.home_dir() / "ledger.sqlite"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class LedgerRow:
    """One model call. `ts` is an ISO-8601 UTC timestamp; `usd=None` means the price is unknown."""

    ts: str
    query_id: str
    stage: str
    provider: str
    model: str
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    usd: float | None
    latency_s: float
    cached: bool = False
    status: str = "ok"
    """`ok` for a billed call; `refused` for a call a budget stopped before it ran (0 tokens, $0)."""
    tenant: str = ""
    hidden: bool = False
    """A call the user did not ask for directly (a summariser, a verifier, a router): a hidden cost."""
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    reasoning_tokens: int = 0
    batch: bool = False
    preset: str = ""
    """The pipeline (config `name`) that made the call."""
    saved_usd: float = 0.0
    """Dollars a lever saved on this call against the call it replaced (cache hit, cheaper route, ...)."""
    lever: str = ""
    """The lever that saved them: `cache`, `routing`, `compression`, ..."""

    @classmethod
    def of(
        cls,
        stage: str,
        model: str,
        usage: Usage,
        latency_s: float,
        query_id: str = "",
        provider: str = "",
        cached: bool = False,
        status: str = "ok",
        tenant: str = "",
        hidden: bool = False,
        preset: str = "",
        saved_usd: float = 0.0,
        lever: str = "",
    ) -> LedgerRow:
        """A row for a call that just finished, stamped now."""
        return cls(
            ts=_now(),
            query_id=query_id,
            stage=stage,
            provider=provider or _guess_provider(model),
            model=model,
            input_tokens=usage.input_tokens,
            cached_tokens=usage.cached_tokens,
            output_tokens=usage.output_tokens,
            usd=usage.usd,
            latency_s=float(latency_s),
            cached=cached,
            status=status,
            tenant=tenant,
            hidden=hidden,
            cache_write_tokens=usage.cache_write_tokens,
            cache_write_1h_tokens=usage.cache_write_1h_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            batch=usage.batch,
            preset=preset,
            saved_usd=float(saved_usd),
            lever=lever,
        )


def _guess_provider(model: str) -> str:
    """A best guess for rows whose caller did not say (shown in reports only)."""
    if "/" in model and not model.startswith(("/", ".")):
        return model.split("/", 1)[0]
    m = model.lower()
    for prefix, provider in (
        ("gpt-", "openai"),
        ("o1", "openai"),
        ("o3", "openai"),
        ("o4", "openai"),
        ("text-embedding", "openai"),
        ("claude", "anthropic"),
        ("deepseek", "deepseek"),
        ("qwen", "qwen"),
        ("gemini", "google"),
        ("mistral", "mistral"),
    ):
        if m.startswith(prefix):
            return provider
    return "local" if m.endswith(".gguf") or "smollm" in m or "minilm" in m else ""


@dataclass(frozen=True)
class LedgerTotal:
    """Totals for one group (a day, a model or a stage). `usd` sums the known costs only."""

    key: str
    calls: int
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    usd: float
    unknown_cost_calls: int
    """Calls whose price was unknown: `usd` leaves them out, so the true total is higher."""
    cache_hits: int = 0
    latency_s: float = 0.0

    @property
    def usd_known(self) -> bool:
        return self.unknown_cost_calls == 0


def parse_since(since: str | date | datetime | None) -> str | None:
    """A `--since` value (YYYY-MM-DD, an ISO timestamp, a date or datetime) as an ISO string to compare with."""
    if since is None:
        return None
    if isinstance(since, datetime):
        dt = since if since.tzinfo else since.replace(tzinfo=UTC)
        return dt.astimezone(UTC).isoformat(timespec="milliseconds")
    if isinstance(since, date):
        return since.isoformat()
    text = since.strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text).isoformat()
        return parse_since(datetime.fromisoformat(text))
    except ValueError:
        raise InputError(
            f"--since {since!r} is not a date; use YYYY-MM-DD (e.g. 2026-01-31) or an ISO timestamp"
        ) from None


def where_clause(
    since: str | date | datetime | None, query_id: str | None, mark: str = "?"
) -> tuple[str, list[str]]:
    """The ` WHERE ...` of a ledger read from a day or time on and/or of one query (empty when neither), and its
    arguments; `mark` is the driver's placeholder (`?` for SQLite, `%s` for PostgreSQL)."""
    clauses: list[str] = []
    args: list[str] = []
    start = parse_since(since)
    if start is not None:
        clauses.append(f"ts >= {mark}")
        args.append(start)
    if query_id is not None:
        clauses.append(f"query_id = {mark}")
        args.append(query_id)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


def total_from_db(r: Sequence[Any]) -> LedgerTotal:
    """One row of the grouped totals query (key, ok calls, input, cached and output tokens, dollars, calls of
    unknown price, cache hits, latency) as a `LedgerTotal`."""
    return LedgerTotal(
        key=str(r[0]),
        calls=int(r[1] or 0),
        input_tokens=int(r[2] or 0),
        cached_tokens=int(r[3] or 0),
        output_tokens=int(r[4] or 0),
        usd=float(r[5] or 0.0),
        unknown_cost_calls=int(r[6] or 0),
        cache_hits=int(r[7] or 0),
        latency_s=float(r[8] or 0.0),
    )


class RecordedTokens(Protocol):
    """The token columns a ledger record carries (`LedgerRow`, `ledger_reader.CallRecord`)."""

    @property
    def input_tokens(self) -> int: ...
    @property
    def cached_tokens(self) -> int: ...
    @property
    def output_tokens(self) -> int: ...
    @property
    def cache_write_tokens(self) -> int: ...
    @property
    def cache_write_1h_tokens(self) -> int: ...
    @property
    def reasoning_tokens(self) -> int: ...
    @property
    def batch(self) -> bool: ...


def recorded_usage(r: RecordedTokens, usd: float | None) -> Usage:
    """One recorded call's token counts as a `Usage` with `usd` (None: to be priced again)."""
    return Usage(
        r.input_tokens,
        r.cached_tokens,
        r.output_tokens,
        usd,
        1,
        cache_write_tokens=r.cache_write_tokens,
        cache_write_1h_tokens=r.cache_write_1h_tokens,
        reasoning_tokens=r.reasoning_tokens,
        batch=r.batch,
    )


def billed_usage(rows: Iterable[LedgerRow]) -> Usage:
    """The summed usage of the calls that were made (`usd=None` if any had an unknown price); a refused call was
    never made, so nothing of it is billed."""
    total = Usage()
    for r in rows:
        if r.status == "ok":
            total = total + recorded_usage(r, r.usd)
    return total


def _create_ledger_tables(db: sqlite3.Connection) -> None:
    db.executescript(_SCHEMA)
    db.executescript(_PARTS_SCHEMA)
    have = {r[1] for r in db.execute("PRAGMA table_info(calls)")}
    for name, decl in _ADDED_COLUMNS.items():
        if name not in have:
            db.execute(f"ALTER TABLE calls ADD COLUMN {name} {decl}")


class Ledger:
    """The ledger on SQLite (WAL mode, so readers never block the writer). Safe to share between threads."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        self._db = open_wal(
            self.path,
            what="the cost ledger",
            fix="point cost.ledger at another file, or move this one away",
            schema=_create_ledger_tables,
            synchronous_normal=True,
        )

    def record(self, row: LedgerRow, parts: Sequence[tuple[str, int, float | None]] = ()) -> int:
        """Append one call (and the prompt parts of an LLM call: part, tokens, dollars); returns its row id."""
        values = row_values(row)
        marks = ",".join("?" * len(values))
        with self._lock:
            # one transaction: a call and its parts are written together or not at all
            self._db.execute("BEGIN")
            try:
                cur = self._db.execute(f"INSERT INTO calls ({_COLUMNS}) VALUES ({marks})", values)
                call_id = int(cur.lastrowid or 0)
                self._db.executemany(
                    "INSERT INTO call_parts (call_id, part, tokens, usd) VALUES (?,?,?,?)",
                    [(call_id, part, int(tokens), usd) for part, tokens, usd in parts],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return call_id

    def rows(
        self, since: str | date | datetime | None = None, query_id: str | None = None
    ) -> list[LedgerRow]:
        """Every row (oldest first), optionally from a day or time on, or of one query."""
        where, args = where_clause(since, query_id)
        with self._lock:
            cur = self._db.execute(f"SELECT {_COLUMNS} FROM calls{where} ORDER BY id", args)
            fetched = cur.fetchall()
        return [row_from_db(r) for r in fetched]

    def totals(self, by: GroupBy = "day", since: str | date | datetime | None = None) -> list[LedgerTotal]:
        """Totals grouped by day, model or stage (sorted by the key; days oldest first)."""
        if by not in GROUP_BY:
            raise InputError(f"cannot group costs by {by!r}; use one of: {', '.join(GROUP_BY)}")
        key = {"day": "substr(ts, 1, 10)", "model": "model", "stage": "stage"}[by]
        where, args = where_clause(since, None)
        sql = (
            f"SELECT {key} AS k, sum(status = 'ok'), sum(input_tokens), sum(cached_tokens), sum(output_tokens), "
            "coalesce(sum(usd), 0), sum(usd IS NULL), sum(cached), sum(latency_s) "
            f"FROM calls{where} GROUP BY k ORDER BY k"
        )
        with self._lock:
            fetched = self._db.execute(sql, args).fetchall()
        return [total_from_db(r) for r in fetched]

    def usage(self, query_id: str) -> Usage:
        """The summed usage of one query's calls (`usd=None` if any of them had an unknown price)."""
        return billed_usage(self.rows(query_id=query_id))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
