"""Open a shared SQLite file in WAL mode, safely when many threads or processes open it at once.

SQLite answers "database is locked" to `PRAGMA journal_mode=WAL` without calling the busy handler while another
connection is switching the same file's journal mode or creating its schema, so a connect timeout alone does not
stop fifty threads opening one new file from failing. `open_wal` retries the whole open until its deadline.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ragcli.errors import InputError


def open_wal(
    path: Path,
    *,
    what: str,
    fix: str,
    schema: Callable[[sqlite3.Connection], object] = lambda db: None,
    synchronous_normal: bool = False,
    timeout_s: float = 30.0,
) -> sqlite3.Connection:
    """A connection to `path` (created with its folder) in WAL mode with `schema(db)` applied.

    `what` names the file for errors ("the cost ledger") and `fix` says what the user can do; a corrupt file or a
    lock held past `timeout_s` raises `InputError` with both.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    delay = 0.01
    while True:
        db: sqlite3.Connection | None = None
        try:
            db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=timeout_s)
            if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            if synchronous_normal:
                db.execute("PRAGMA synchronous=NORMAL")
            schema(db)
            return db
        except sqlite3.OperationalError as exc:
            if db is not None:
                db.close()
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise InputError(f"cannot open {what} at {path}: {exc}; {fix}") from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
        except sqlite3.DatabaseError as exc:
            if db is not None:
                db.close()
            raise InputError(f"cannot open {what} at {path}: {exc}; {fix}") from exc


@contextmanager
def locked_transaction(db: sqlite3.Connection, lock: threading.Lock) -> Iterator[sqlite3.Connection]:
    """`db` inside one transaction (committed on exit, rolled back on an error), one thread at a time: the shared
    connection of a store opened by `open_wal` (autocommit mode, so the transaction is explicit)."""
    with lock:
        db.execute("BEGIN")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
