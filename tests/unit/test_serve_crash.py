"""`ragcli serve` as a real process (the CLI, uvicorn, the embedded qdrant-edge store, SQLite state): answers over
HTTP, survives `kill -9` in the middle of requests, and restarts on the same state with no corrupt file and no
duplicated or half-written ledger row."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from ragcli.config import parse_config  # noqa: E402
from ragcli.ingest.plain_text_parser import PlainTextParser  # noqa: E402
from ragcli.pipelines.ingest_pipeline import ingest  # noqa: E402
from ragcli.pipelines.stages import Stages  # noqa: E402
from ragcli.serve.key_store import issue_key  # noqa: E402
from ragcli.state.build import open_state  # noqa: E402
from tests.unit.gateway_support import write_docs  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(cfg: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ragcli", "serve", "-c", str(cfg), "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            if proc.poll() is not None:
                raise RuntimeError(
                    proc.stderr.read().decode()[-2000:] if proc.stderr else "server died"
                ) from None
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("ragcli serve did not start")


def test_kill_9_mid_requests_then_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    data = {
        "name": "crash", "home": str(home), "collection": "c", "store": {"type": "qdrant_edge"},
        "filterable": {"tenant": "keyword"}, "embedder": {"type": "hash", "dim": 64},
        "llm": {"type": "scripted", "replies": ["Answer [1]."]},
    }  # fmt: skip
    cfg_path = tmp_path / "crash.yaml"
    cfg_path.write_text(yaml.safe_dump(data), encoding="utf-8")
    cfg = parse_config(data)
    stages = Stages.from_config(cfg, parser=PlainTextParser())
    for tenant, paths in write_docs(tmp_path / "docs").items():
        ingest(paths, stages, meta={"tenant": tenant})
    stages.close()
    state = open_state(cfg)
    record, key = issue_key("acme", {"tenant": "acme"})
    state.keys.add(record)
    state.close()

    port = _port()
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    body = {"model": "crash", "messages": [{"role": "user", "content": "hotel limits rule?"}]}
    headers = {"Authorization": f"Bearer {key}"}

    def one(_: int) -> str | None:
        try:
            r = httpx.post(url, json=body, headers=headers, timeout=30)
        except httpx.HTTPError:
            return None
        assert r.status_code == 200, r.text
        return r.headers["x-ragcli-query-id"]

    proc = _serve(cfg_path, port)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(one, i) for i in range(80)]
        deadline = time.monotonic() + 60
        while sum(f.done() for f in futures) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)  # 8 requests are in flight
        answered = [q for q in (f.result() for f in futures) if q]
    proc.wait()
    assert answered  # some requests finished before the kill, the rest were cut

    proc = _serve(cfg_path, port)  # the same port, the same state: no lock or file left behind blocks it
    try:
        after = [one(i) for i in range(3)]
        assert all(after)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)

    for name in ("ledger.sqlite", "keys.sqlite"):
        with sqlite3.connect(home / name) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    state = open_state(cfg)
    rows = state.ledger.rows()
    state.close()
    llm = [r.query_id for r in rows if r.stage == "llm"]
    assert len(llm) == len(set(llm))  # no query billed twice
    for qid in [*answered, *after]:
        assert sorted(r.stage for r in rows if r.query_id == qid) == ["embed_query", "llm"]
    assert all(r.ts and r.model and r.stage and r.status == "ok" for r in rows)
