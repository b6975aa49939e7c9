"""`open_wal`: shared SQLite files open in WAL mode under contention, and a bad file names itself and the fix."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from ragcli.errors import InputError
from ragcli.state.sqlite_file import open_wal


def _schema(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")


def test_waits_for_a_writer_that_holds_the_file_then_opens_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
    release.start()
    try:
        db = open_wal(path, what="the test store", fix="move it", schema=_schema, timeout_s=10)
    finally:
        release.join()
        holder.close()
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.execute("INSERT INTO t VALUES (1)")


def test_many_threads_open_one_new_file_at_once(tmp_path: Path) -> None:
    for round_ in range(5):
        path = tmp_path / f"new{round_}.sqlite"
        errors: list[BaseException] = []

        def open_one(p: Path = path, errors: list[BaseException] = errors) -> None:
            try:
                open_wal(p, what="the test store", fix="move it", schema=_schema).close()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=open_one) for _ in range(30)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []


def test_a_lock_held_past_the_timeout_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "held.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    t0 = time.monotonic()
    try:
        with pytest.raises(InputError, match=r"cannot open the test store at .*held\.sqlite.*; move it"):
            open_wal(path, what="the test store", fix="move it", schema=_schema, timeout_s=0.3)
    finally:
        holder.close()
    assert time.monotonic() - t0 < 30


def test_a_file_that_is_not_a_database_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(InputError, match=r"cannot open the test store at .*junk\.sqlite.*; move it"):
        open_wal(path, what="the test store", fix="move it", schema=_schema)
