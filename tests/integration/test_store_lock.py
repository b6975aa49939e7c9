"""Issue 9, item 2: the embedded store is one process at a time; other commands wait for it, say so, and give up
cleanly, before loading models. Real processes on the real qdrant-edge engine."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

HOLD = """
import select, sys
from ragcli.config import load_config
from ragcli.retrieval.build import build_store
store = build_store(load_config(sys.argv[1]))
assert store.open()
print("open", flush=True)
select.select([sys.stdin], [], [], float(sys.argv[2]))  # hold until told (a line on stdin) or timed out
store.close()
"""


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ, RAGCLI_HOME=str(home), PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    env.pop("RAGCLI_TEST_CRASH_AT", None)
    return env


def _config(tmp_path: Path, name: str, lock_timeout_s: float, **extra: object) -> str:
    data: dict[str, object] = {
        "home": str(tmp_path / "home"),
        "store": {"type": "qdrant_edge", "lock_timeout_s": lock_timeout_s},
        "embedder": {"type": "hash"},
        "llm": {"type": "scripted"},
    }
    data.update(extra)
    f = tmp_path / f"{name}.yaml"
    f.write_text(yaml.safe_dump(data))
    return str(f)


def _ragcli(args: list[str], tmp_path: Path, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ragcli", *args],
        cwd=ROOT,
        env=_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=120,
        **kw,  # type: ignore[call-overload]
    )


@pytest.fixture
def store_cfg(tmp_path: Path) -> str:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text(
        "Expenses are submitted within 30 days.\n\nHotels in Paris cost at most 200 euros."
    )
    cfg = _config(tmp_path, "c", 30)
    r = _ragcli(["ingest", str(docs), "-c", cfg], tmp_path)
    assert r.returncode == 0, r.stderr
    return cfg


@pytest.fixture
def hold(tmp_path: Path) -> Iterator[object]:
    procs: list[subprocess.Popen[str]] = []

    def start(cfg: str, seconds: float) -> subprocess.Popen[str]:
        p = subprocess.Popen(
            [sys.executable, "-c", HOLD, cfg, str(seconds)],
            cwd=ROOT,
            env=_env(tmp_path / "home"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(p)
        assert p.stdout is not None and p.stdout.readline().strip() == "open"
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def test_a_query_waits_for_the_store_and_says_so(store_cfg: str, hold: object, tmp_path: Path) -> None:
    holder = hold(store_cfg, 60)  # type: ignore[operator]
    query = subprocess.Popen(
        [sys.executable, "-m", "ragcli", "query", "hotel limit in Paris?", "-c", store_cfg, "--no-answer"],
        cwd=ROOT,
        env=_env(tmp_path / "home"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert query.stderr is not None
    said = query.stderr.readline()  # the query says it waits, then waits
    assert "open in another process" in said and "waiting up to 30 s" in said, said
    assert f"process {holder.pid}" in said
    time.sleep(0.5)
    assert query.poll() is None  # still waiting while the store is held
    holder.stdin.write("release\n")
    holder.stdin.flush()
    out, err = query.communicate(timeout=120)
    assert query.returncode == 0, err
    assert "hotel limit in Paris?" in out


def test_a_busy_store_fails_after_the_timeout_before_models_load(
    store_cfg: str, hold: object, tmp_path: Path
) -> None:
    hold(store_cfg, 60)  # type: ignore[operator]
    # models that cannot load: if the command loaded them before taking the store, it would fail on them instead
    cfg = _config(
        tmp_path,
        "short",
        1,
        embedder={"type": "sentence_transformers", "model": str(tmp_path / "no-such-model")},
        llm={"type": "llama_cpp", "model": str(tmp_path / "no-such.gguf")},
    )
    t0 = time.monotonic()
    r = _ragcli(["query", "hotel limit?", "-c", cfg], tmp_path)
    assert r.returncode == 1, r.stderr
    assert time.monotonic() - t0 < 20
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, r.stderr
    assert "open in another process" in lines[0] and "after waiting 1 s" in lines[0]
    assert "store.lock_timeout_s" in lines[0] and "Qdrant server" in lines[0]
    assert "no-such-model" not in r.stderr


def test_four_concurrent_queries_all_answer(store_cfg: str, tmp_path: Path) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "ragcli", "query", f"question {i}?", "-c", store_cfg, "--json"],
            cwd=ROOT,
            env=_env(tmp_path / "home"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [e for _, e in results]


def test_an_idle_chat_does_not_lock_out_a_query(store_cfg: str, tmp_path: Path) -> None:
    chat = subprocess.Popen(
        [sys.executable, "-m", "ragcli", "chat", "-c", store_cfg],
        cwd=ROOT,
        env=_env(tmp_path / "home"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert chat.stdin is not None and chat.stdout is not None
        chat.stdin.write("What is the hotel limit?\n")
        chat.stdin.flush()
        seen = ""
        while "Sources" not in seen and "cost" not in seen:
            line = chat.stdout.readline()
            assert line, "chat ended early"
            seen += line
        time.sleep(0.5)  # the chat is now idle at its prompt
        quick = _config(tmp_path, "quick", 0)
        r = _ragcli(["query", "expenses?", "-c", quick, "--no-answer"], tmp_path)
        assert r.returncode == 0, r.stderr
    finally:
        _, err = chat.communicate("\n", timeout=60)
    assert chat.returncode == 0, err
