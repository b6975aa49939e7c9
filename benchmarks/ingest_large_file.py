"""Peak memory, progress and resume of ingest on a 20 MB text file (Pride and Prejudice repeated).

Three runs, each in its own process (peak RSS = the kernel's VmHWM of that process):
  1. `before`: the pipeline as of commit 82176cf (whole document parsed, chunked, embedded and written at
     once), hash vectors (so the run ends in minutes; the model's own memory is measured in run 3);
  2. `after`: the streaming pipeline, hash vectors, to the end;
  3. `after, MiniLM`: the streaming pipeline with the real embedder (ONNX Runtime by default), stopped after
     `--seconds`, then started again (`--starts` in all, default 2; none after one that reaches the end) for
     `--seconds` each: RSS sampled at every progress event, and the chunks a later start found already
     written (kept, not embedded again).

    .venv/bin/python benchmarks/ingest_large_file.py [--data DIR] [--mb 20] [--seconds 300]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.ingest_common import REPO, default_data, header, loadavg, write_section

OLD_COMMIT = "82176cf"

_CHILD = r"""
import json, os, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[5])
log = open(sys.argv[4], "a")
def rss():
    out = {}
    for line in open("/proc/self/status"):
        if line.startswith(("VmRSS", "VmHWM")):
            k, v = line.split(":"); out[k] = int(v.split()[0]) // 1024
    return out
t0 = time.perf_counter()
def note(**kw):
    log.write(json.dumps({"t": round(time.perf_counter() - t0, 1), **rss(), **kw}) + "\n"); log.flush()
import threading
def sample():  # peak RSS even while no progress event comes (parsing, chunking, model loading)
    while True:
        note(sample=1); time.sleep(5)
threading.Thread(target=sample, daemon=True).start()
from ragcli.config import load_config
from ragcli.pipelines.stages import Stages
mode, home, path = sys.argv[1], sys.argv[2], sys.argv[3]
cfg = load_config("local", overrides={"collection": "big", "home": home})
if mode == "minilm" and os.environ.get("RAGCLI_BENCH_EMBED_BACKEND"):
    cfg.embedder.backend = os.environ["RAGCLI_BENCH_EMBED_BACKEND"]
if mode != "minilm":
    from ragcli.config import HashEmbedderConfig
    cfg.embedder = HashEmbedderConfig(dim=384)
stages = Stages.from_config(cfg)
if mode == "before":
    import importlib.util
    spec = importlib.util.spec_from_file_location("old_pipeline", sys.argv[6])
    old = importlib.util.module_from_spec(spec); sys.modules["old_pipeline"] = old; spec.loader.exec_module(old)
    rep = old.ingest([path], stages, progress=lambda p: note(files=p.files_done))
else:
    import ragcli.pipelines.ingest_pipeline as pipeline
    optimize = pipeline._optimize
    def noted_optimize(st, written):  # RSS around the store's end-of-ingest optimisation
        note(optimize="start"); optimize(st, written); note(optimize="end")
    pipeline._optimize = noted_optimize
    note(start=1)
    rep = pipeline.ingest([path], stages, progress=lambda p: note(done=p.chunks_done, total=p.chunks_total))
note(close="start")
stages.close()
note(end=1, chunks=rep.chunks_added + rep.chunks_replaced, resumed=rep.chunks_resumed, seconds=rep.seconds,
     stages={k: round(v, 1) for k, v in rep.stage_seconds.items()})
"""


def build_file(data: Path, mb: float, out: Path) -> int:
    book = (data / "docs_corpus" / "gutenberg_pride_and_prejudice" / "1342-0.txt").read_text(encoding="utf-8")
    copies = max(1, round(mb * 1e6 / len(book.encode("utf-8"))))
    paragraphs = book.replace("\r\n", "\n").split("\n\n")
    with out.open("w", encoding="utf-8") as f:
        for i in range(copies):  # every paragraph numbered by copy: no chunk repeats (no free dedupe)
            f.write(f"Copy {i + 1}\n\n" + "\n\n".join(f"({i + 1}) {p}" for p in paragraphs) + "\n\n")
    return out.stat().st_size


def run_child(mode: str, home: Path, path: Path, log: Path, old: Path, seconds: float | None) -> int:
    # caches (the ONNX export) in the default home, prepared before; the store in a fresh folder (config home)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cmd = [sys.executable, "-c", _CHILD, mode, str(home), str(path), str(log), str(REPO), str(old)]
    proc = subprocess.Popen(cmd, env=env, cwd=REPO)
    try:
        return proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)  # an interruption at any point, as a killed process
        proc.wait()
        return -9


def read_log(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=default_data())
    ap.add_argument("--mb", type=float, default=20.0)
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--skip-before", action="store_true")
    ap.add_argument("--minilm-only", action="store_true", help="only the MiniLM starts (run 3)")
    ap.add_argument("--starts", type=int, default=2, help="MiniLM starts of --seconds each (run 3)")
    ap.add_argument(
        "--backend", default=None, help="the MiniLM runs' embedder.backend (default: the preset's)"
    )
    args = ap.parse_args()
    if args.backend:
        os.environ["RAGCLI_BENCH_EMBED_BACKEND"] = args.backend  # read by the child processes
    load_start = loadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        big = tmp / "big.txt"
        size = build_file(args.data, args.mb, big)
        old = tmp / "old_ingest_pipeline.py"
        old.write_text(
            subprocess.run(
                ["git", "show", f"{OLD_COMMIT}:ragcli/pipelines/ingest_pipeline.py"],
                capture_output=True,
                text=True,
                cwd=REPO,
                check=True,
            ).stdout
        )
        modes = [] if args.minilm_only else ["after"] if args.skip_before else ["before", "after"]
        for mode in modes:
            log = tmp / f"{mode}.jsonl"
            t0 = time.perf_counter()
            rc = run_child(mode, tmp / f"home-{mode}", big, log, old, None)
            ev = read_log(log)
            end = ev[-1] if ev else {}
            chunk_events = sum(1 for e in ev if e.get("done"))
            rows.append(
                (
                    f"{mode}, hash vectors, to the end",
                    rc,
                    time.perf_counter() - t0,
                    max((e.get("VmHWM", 0) for e in ev), default=0),
                    end.get("chunks", 0),
                    chunk_events,
                    "",
                )
            )
            print(rows[-1], end.get("stages"), flush=True)
        home = tmp / "home-minilm"
        for attempt in range(1, args.starts + 1):
            log = tmp / f"minilm{attempt}.jsonl"
            t0 = time.perf_counter()
            rc = run_child("minilm", home, big, log, old, args.seconds)
            ev = read_log(log)
            done = [e for e in ev if e.get("done")]
            first = done[0]["done"] if done else 0
            end = ev[-1] if ev and ev[-1].get("end") else {}
            how = f"killed after {args.seconds:.0f} s" if rc == -9 else f"exit {rc}"
            if end:
                how = f"ran to the end ({end.get('resumed', 0):,} chunks found written and kept)"
            rows.append(
                (
                    f"after, MiniLM, start {attempt}, {how}",
                    rc,
                    time.perf_counter() - t0,
                    max((e.get("VmHWM", 0) for e in ev), default=0),
                    done[-1]["done"] if done else 0,
                    len(done),
                    f"first progress event at chunk {first:,} of {done[0]['total']:,}" if done else "",
                )
            )
            print(rows[-1], end.get("stages"), flush=True)
            if rc != -9:
                break
    load_end = loadavg()
    table = "\n".join(
        f"| {name} | {rc} | {secs:.0f} | {peak:,} | {chunks:,} | {events} | {note} |"
        for name, rc, secs, peak, chunks, events, note in rows
    )
    body = (
        header(
            f"python benchmarks/ingest_large_file.py --mb {args.mb:g} --seconds {args.seconds:g}"
            + (" --minilm-only" if args.minilm_only else " --skip-before" if args.skip_before else "")
            + (f" --starts {args.starts}" if args.starts != 2 else "")
            + (f" --backend {args.backend}" if args.backend else "")
        )
        + f"- load average at start {load_start}, at end {load_end} (2 cores)\n\n"
        f"One {size / 1e6:.1f} MB .txt file (the Gutenberg Pride and Prejudice repeated, each paragraph numbered by its copy so that no chunk text repeats). Peak RSS is the "
        "process's VmHWM in MB. `chunks` = chunks in the store at the end of that process; `progress events` = "
        "events that moved by chunks (the bar's unit) before the end or the kill.\n\n"
        "| run | exit | seconds | peak RSS MB | chunks | progress events | note |\n"
        "| --- | --- | --- | --- | --- | --- | --- |\n" + table + "\n"
    )
    print(body)
    title = "Peak memory and resume on a 20 MB text file"
    write_section(f"{title}, backend {args.backend}" if args.backend else title, body)


if __name__ == "__main__":
    main()
