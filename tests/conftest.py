"""Shared test setup: offline by default, and no unit test may open a network connection."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")

DATA_DIR = Path(os.environ.get("RAGCLI_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test writes under its own RAGCLI_HOME."""
    monkeypatch.setenv("RAGCLI_HOME", str(tmp_path / "ragcli-home"))


@pytest.fixture(autouse=True)
def _no_network(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests refuse socket connections, except to loopback (local fake servers) and unix sockets."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and (host.startswith("127.") or host in ("localhost", "::1")):
            return real_connect(self, address)  # type: ignore[arg-type]
        if isinstance(address, str | bytes):  # unix sockets
            return real_connect(self, address)  # type: ignore[arg-type]
        raise RuntimeError(f"network access in tests is refused: {address!r}")

    monkeypatch.setattr(socket.socket, "connect", guarded)
    yield


@pytest.fixture
def data_dir() -> Path:
    if not DATA_DIR.is_dir():
        pytest.skip(f"evaluation data not found at {DATA_DIR}; set RAGCLI_DATA")
    return DATA_DIR


_SERVICE_WORDS = ("postgresql", "psycopg", "chromium")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """In CI (`RAGCLI_REQUIRE_SERVICES=1`, set by .ci/run) a test skipped for a missing service fails instead.

    Locally, tests that need PostgreSQL or Chromium skip with the reason when those are not installed.
    """
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if os.environ.get("RAGCLI_REQUIRE_SERVICES") != "1" or not report.skipped:
        return
    reason = str(report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr).lower()
    if any(word in reason for word in _SERVICE_WORDS):
        report.outcome = "failed"
        report.longrepr = f"a service this test needs is missing in CI (RAGCLI_REQUIRE_SERVICES=1): {reason}"
