"""The warm path of `ragcli query`: a running `ragcli serve` of the same config answers it.

A real `ragcli serve` process over the embedded qdrant-edge store (hash embedder, scripted LLM) and the CLI as a
real process: the query is answered by the server (which holds the store, so the CLI could not have opened it:
`lock_timeout_s: 0`), prints what the local path prints, and imports no heavy library. A dead or unreachable
server's file is removed and the query runs here; a server of another config is never asked.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from ragcli.cli import app  # noqa: E402
from ragcli.config import parse_config  # noqa: E402
from ragcli.ingest.plain_text_parser import PlainTextParser  # noqa: E402
from ragcli.pipelines.ingest_pipeline import ingest  # noqa: E402
from ragcli.pipelines.stages import Stages  # noqa: E402
from ragcli.serve.discovery import QUERY_PATH, ServerInfo, config_id, servers_dir, write_entry  # noqa: E402
from ragcli.state.build import open_state  # noqa: E402
from tests.unit.gateway_support import write_docs  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
REPLY = "The answer is in the sources [1]."
HEAVY = ("torch", "sentence_transformers", "onnxruntime", "qdrant_edge", "qdrant_client", "unstructured")
runner = CliRunner()


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_home(tmp: Path) -> tuple[Path, Any]:
    """A config file over the embedded store with collections `a` and `b` ingested; (its path, the config)."""
    data = {
        "name": "warm", "home": str(tmp / "home"), "collection": "a",
        "store": {"type": "qdrant_edge", "lock_timeout_s": 0}, "filterable": {"tenant": "keyword"},
        "embedder": {"type": "hash", "dim": 64}, "llm": {"type": "scripted", "replies": [REPLY]},
    }  # fmt: skip
    path = tmp / "warm.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    docs = write_docs(tmp / "docs")
    for collection in ("a", "b"):
        stages = Stages.from_config(
            parse_config({**data, "collection": collection}), parser=PlainTextParser()
        )
        for tenant, paths in docs.items():
            ingest(paths, stages, meta={"tenant": tenant})
        stages.close()
    return path, parse_config(data)


def start_serve(cfg_path: Path, home: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """`ragcli serve` in its own process; returns once its discovery file is written (it answers by then)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "ragcli", "serve", "-c", str(cfg_path), "--port", str(_port())]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    entry = servers_dir(home) / f"{proc.pid}.json"
    deadline = time.monotonic() + 60
    while not entry.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(proc.stderr.read().decode()[-2000:] if proc.stderr else "serve did not start")
        time.sleep(0.1)
    return proc, entry


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`ragcli -v ARGS` as a new process, with `-X importtime` (stderr lists every module it imported)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-X", "importtime", "-m", "ragcli", "-v", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def imported(stderr: str) -> set[str]:
    return {
        ln.rsplit("|", 1)[1].strip().split(".")[0]
        for ln in stderr.splitlines()
        if ln.startswith("import time:")
    }


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Any, Path]]:
    """A running `ragcli serve` of collection `a`: (config path, config, its discovery file)."""
    cfg_path, cfg = make_home(tmp_path_factory.mktemp("warm"))
    proc, entry = start_serve(cfg_path, cfg.home_dir())
    yield cfg_path, cfg, entry
    stop(proc)


def test_query_is_answered_by_the_running_server_without_heavy_imports(
    served: tuple[Path, Any, Path],
) -> None:
    cfg_path, cfg, entry = served
    r = cli("query", "-c", str(cfg_path), "--json", "hotel limits rule at acme?")
    assert r.returncode == 0, r.stderr[-2000:]
    pid = json.loads(entry.read_text())["pid"]
    assert f"answered by ragcli serve (pid {pid}," in r.stderr
    assert not imported(r.stderr) & set(HEAVY), imported(r.stderr) & set(HEAVY)
    ans = json.loads(r.stdout)
    assert ans["text"] == REPLY and ans["citations"] and ans["question"] == "hotel limits rule at acme?"
    state = open_state(cfg)
    stages = sorted(row.stage for row in state.ledger.rows() if row.query_id == ans["query_id"])
    state.close()
    assert stages == ["embed_query", "llm"]  # the server's pipeline ran it and wrote its ledger rows


def test_concurrent_cli_queries_share_the_server(served: tuple[Path, Any, Path]) -> None:
    cfg_path, _, _ = served
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "ragcli", "-v", "query", "-c", str(cfg_path), "--json", "--no-answer"]
    procs = [
        subprocess.Popen(
            [*cmd, f"{topic} rule?"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for topic in ("hotel limits", "password rotation", "laptop returns")
    ]  # at once: with the embedded store only the server's process may open it
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0 and b"answered by ragcli serve" in err, err.decode()[-2000:]
        assert json.loads(out)["citations"]


def test_no_server_queries_here(served: tuple[Path, Any, Path]) -> None:
    cfg_path, _, _ = served
    r = cli("query", "-c", str(cfg_path), "--no-server", "--no-answer", "hotel limits rule?")
    assert r.returncode == 1  # the server holds the store, so this process cannot open it
    assert "open in another process" in r.stderr and "answered by" not in r.stderr


def test_a_server_of_another_config_is_not_used(served: tuple[Path, Any, Path]) -> None:
    cfg_path, _, entry = served
    r = cli("query", "-c", str(cfg_path), "--collection", "b", "--json", "hotel limits rule?")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "answered by" not in r.stderr and json.loads(r.stdout)["text"] == REPLY
    assert entry.exists()


def test_errors_are_printed_as_the_local_path_prints_them(served: tuple[Path, Any, Path]) -> None:
    cfg_path, _, _ = served
    r = cli("query", "-c", str(cfg_path), "--where", "colour = 'red'", "hotel?")
    assert r.returncode == 64 and "error: unknown filter field 'colour'" in r.stderr


def test_the_discovery_file_is_private_and_the_route_needs_its_token(served: tuple[Path, Any, Path]) -> None:
    _, cfg, entry = served
    assert entry.stat().st_mode & 0o777 == 0o600 and entry.parent.stat().st_mode & 0o777 == 0o700
    info = json.loads(entry.read_text())
    url = f"http://127.0.0.1:{info['port']}{QUERY_PATH}"
    body = {"pipeline": "warm", "config_id": config_id(cfg), "question": "hotel?", "no_answer": True}
    assert httpx.post(url, json=body).status_code == 401
    assert httpx.post(url, json=body, headers={"Authorization": "Bearer nope"}).status_code == 401
    ok = httpx.post(url, json=body, headers={"Authorization": f"Bearer {info['token']}"})
    assert ok.status_code == 200 and ok.json()["text"] == ""
    other = httpx.post(
        url, json={**body, "config_id": "x"}, headers={"Authorization": f"Bearer {info['token']}"}
    )
    assert other.status_code == 409


def test_same_printout_as_the_local_path_and_the_file_goes_on_shutdown(tmp_path: Path) -> None:
    cfg_path, cfg = make_home(tmp_path)
    runs = (["password rotation rule?"], ["--show-prompt", "--no-stream", "laptop returns rule?"])
    proc, entry = start_serve(cfg_path, cfg.home_dir())
    try:
        warm = [cli("query", "-c", str(cfg_path), *args) for args in runs]
    finally:
        stop(proc)
    assert not entry.exists()  # removed on a clean shutdown (SIGTERM)
    local = [cli("query", "-c", str(cfg_path), *args) for args in runs]
    for w, here in zip(warm, local, strict=True):
        assert w.returncode == here.returncode == 0, w.stderr[-2000:] + here.stderr[-2000:]
        assert "answered by" in w.stderr and "answered by" not in here.stderr
        assert "Sources" in here.stdout and "cost $" in here.stdout
        # answer, sources, cost line (streamed here, printed whole there); each query has its own id
        assert "· query" in w.stdout and "· query" in here.stdout
        assert _without_query_id(w.stdout) == _without_query_id(here.stdout)
    assert local[1].stdout.startswith("prompt (")


# ---------------------------------------------------------------- no live server: the query runs here


def _entry(cfg: Any, pid: int, *, cid: str | None = None) -> Path:
    info = ServerInfo(pid, "127.0.0.1", _port(), "token", {"warm": cid or config_id(cfg)})
    return write_entry(cfg.home_dir(), info)


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.mark.parametrize("alive", [False, True], ids=["dead-pid", "live-pid-closed-port"])
def test_a_gone_server_is_forgotten_and_the_query_runs_here(tmp_path: Path, alive: bool) -> None:
    cfg_path, cfg = make_home(tmp_path)
    entry = _entry(cfg, os.getpid() if alive else _dead_pid())
    r = runner.invoke(app, ["query", "-c", str(cfg_path), "--json", "hotel limits rule?"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["text"] == REPLY
    assert not entry.exists()


def test_a_live_server_of_another_config_is_left_alone(tmp_path: Path) -> None:
    cfg_path, cfg = make_home(tmp_path)
    entry = _entry(cfg, os.getpid(), cid="0" * 32)  # a closed port: asking it would forget the file
    r = runner.invoke(app, ["query", "-c", str(cfg_path), "--no-answer", "hotel limits rule?"])
    assert r.exit_code == 0, r.output
    assert entry.exists()


def test_config_id_tells_configs_apart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = {"home": str(tmp_path), "embedder": {"type": "hash"}, "llm": {"type": "scripted"}}
    assert config_id(parse_config(base)) == config_id(parse_config(dict(base)))
    assert config_id(parse_config(base)) != config_id(parse_config({**base, "collection": "other"}))
    rel = {**base, "store": {"type": "qdrant_edge", "path": "store"}}
    monkeypatch.chdir(tmp_path)
    here = config_id(parse_config(rel))
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert config_id(parse_config(rel)) != here  # a relative path names another folder from elsewhere


def _without_query_id(printout: str) -> str:
    return re.sub(r"\s*·\s+query\s+[0-9a-f]+", "", printout)
