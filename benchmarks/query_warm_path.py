"""The warm path of `ragcli query` at 100k chunks: cold CLI through a running `ragcli serve` vs cold CLI alone.

    nice -n 10 .venv/bin/python benchmarks/query_warm_path.py [--chunks 100000] [--rounds 3] [--per-round 3]

Builds a collection of `--chunks` chunks under the `local` preset (hybrid search on the embedded Qdrant engine,
packing with SmolLM2's tokenizer): SciFact sentence windows as text with their real BM25 sparse vectors, and random
unit dense vectors (embedding 100k chunks with MiniLM here would take over an hour; search cost does not depend on
what the vectors mean). Queries are SciFact test questions, embedded by the real MiniLM embedder. Then, in
`--rounds` rounds: start `ragcli serve`, time `ragcli query --no-answer` as a new process (the warm path), time
`--warm` queries sent straight to the server's route (the warm latency: HTTP round trip and the pipeline's stage
times), stop the server, and time `ragcli query --no-answer` as a new process with no server (the local path,
which loads models and opens the 100k store itself). The two cold kinds cannot interleave query by query: while the
server runs it holds the store. Writes its section of benchmarks/results/ingest.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.ingest_common import REPO, default_data, header, loadavg, write_section

_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def build_store(cfg: Any, corpus: Path, n: int, optimize: bool) -> float:
    """Write `n` chunks (SciFact sentence windows, BM25 sparse, random dense) into the config's store; seconds."""
    import numpy as np

    from ragcli.pipelines.stages import Stages
    from ragcli.types import Chunk

    t0 = time.perf_counter()
    docs = [json.loads(line) for line in corpus.open(encoding="utf-8")]
    stages = Stages.from_config(cfg)
    store, encoder = stages.store, stages.sparse_encoder
    assert encoder is not None, "the local preset has sparse vectors"
    store.ensure_collection(384, sparse=True, indexed_fields=dict(cfg.filterable))
    rng = np.random.default_rng(0)
    step = 5_000
    for start in range(0, n, step):
        chunks = []
        for k in range(start, min(n, start + step)):
            d = docs[k % len(docs)]
            sents = _SENTENCE.split(d["text"]) or [d["title"]]
            at = (k // len(docs)) % len(sents)
            text = " ".join(sents[at : at + 3])
            chunks.append(
                Chunk(
                    id=f"bench-{k}", doc_id=f"doc-{d['_id']}", text=text, source=f"scifact/{d['_id']}.txt",
                    section_path=(d["title"][:80],), ordinal=k // len(docs), tokens=len(text) // 4,
                    metadata={"content_type": "txt"},
                )
            )  # fmt: skip
        dense = rng.standard_normal((len(chunks), 384)).astype(np.float32)
        dense /= np.linalg.norm(dense, axis=1, keepdims=True)
        store.upsert(chunks, dense, encoder.encode([c.text for c in chunks]))
    if optimize:
        store._require().optimize()  # type: ignore[attr-defined]  # what an ingest of this size would do
    stages.close()
    return time.perf_counter() - t0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_serve(
    ragcli: str, cfg_path: Path, home: Path, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], Any]:
    from ragcli.serve.discovery import read_entries

    proc = subprocess.Popen(
        [ragcli, "serve", "-c", str(cfg_path), "--port", str(free_port())],
        env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        found = [i for i in read_entries(home) if i.pid == proc.pid]
        if found:
            return proc, found[0]
        if proc.poll() is not None:
            raise SystemExit(
                f"ragcli serve died: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}"
            )
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("ragcli serve did not advertise itself within 300 s")


def cold(ragcli: str, cfg_path: Path, question: str, env: dict[str, str]) -> tuple[float, str]:
    """Seconds of one `ragcli -v query --no-answer` process, and who answered (`serve` or `local`)."""
    t0 = time.perf_counter()
    r = subprocess.run(
        [ragcli, "-v", "query", "--no-answer", "-c", str(cfg_path), question],
        env=env, cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"ragcli query: exit {r.returncode}: {r.stderr[-1000:]}")
    return seconds, "serve" if "answered by ragcli serve" in r.stderr else "local"


def warm(info: Any, config_id: str, questions: list[str]) -> tuple[list[float], dict[str, list[float]]]:
    """Round-trip seconds of queries sent to the server's route, and the pipeline's own stage seconds."""
    from ragcli.serve.discovery import QUERY_PATH, call

    name = next(n for n, cid in info.pipelines.items() if cid == config_id)
    times, stages = [], {}
    for q in questions:
        body = {"pipeline": name, "config_id": config_id, "question": q, "no_answer": True}
        t0 = time.perf_counter()
        status, raw = call(info, "POST", QUERY_PATH, body)
        times.append(time.perf_counter() - t0)
        assert status == 200, raw[:500]
        for t in json.loads(raw)["trace"]:
            stages.setdefault(t["stage"], []).append(t["seconds"])
    return times, stages


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=default_data())
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--per-round", type=int, default=3, help="cold CLI runs of each kind per round")
    ap.add_argument("--warm", type=int, default=40, help="queries sent to the warm server per round")
    ap.add_argument("--no-optimize", action="store_true", help="leave the store as written (no optimize())")
    ap.add_argument(
        "--fusion",
        default=None,
        help="replace the preset's retrieval.fusion (e.g. rrf: the store's own fusion)",
    )
    args = ap.parse_args()
    ragcli = str(Path(sys.executable).with_name("ragcli"))
    src = args.data / "scifact_beir"
    questions = [json.loads(line)["text"] for line in (src / "queries.jsonl").open(encoding="utf-8")]
    random.Random(0).shuffle(questions)
    load = [loadavg()]
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        home = tmp / "home"
        env = {**os.environ, "RAGCLI_HOME": str(home), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        os.environ["RAGCLI_HOME"] = str(home)
        from ragcli.config import load_config
        from ragcli.serve.discovery import config_id

        cfg_path = tmp / "warm.yaml"
        preset = (REPO / "ragcli" / "pipelines" / "presets" / "local.yaml").read_text(encoding="utf-8")
        preset = preset.replace("collection: default", f"collection: warm\nhome: {home}")
        if args.fusion:
            preset = preset.replace("fusion: packaged:minilm-scifact", f"fusion: {args.fusion}")
        cfg_path.write_text(preset)
        cfg = load_config(str(cfg_path))
        cid = config_id(cfg)
        build_s = build_store(cfg, src / "corpus.jsonl", args.chunks, not args.no_optimize)
        print(f"built {args.chunks} chunks in {build_s:.0f}s", file=sys.stderr)
        cold(
            ragcli, cfg_path, "warm up", env
        )  # one-time exports (ONNX model, tokenizer) are not start-up costs
        via_serve: list[float] = []
        local: list[float] = []
        rtt: list[float] = []
        stage_s: dict[str, list[float]] = {}
        serve_start: list[float] = []
        qi = 0
        for rnd in range(args.rounds):
            t0 = time.perf_counter()
            proc, info = start_serve(ragcli, cfg_path, home, env)
            serve_start.append(time.perf_counter() - t0)
            try:
                warm(info, cid, questions[:3])  # the server's first queries fill its caches
                for _ in range(args.per_round):
                    s, who = cold(ragcli, cfg_path, questions[qi % len(questions)], env)
                    qi += 1
                    assert who == "serve", "the warm path was not taken"
                    via_serve.append(s)
                times, stages = warm(info, cid, questions[qi : qi + args.warm])
                qi += args.warm
                rtt += times
                for k, v in stages.items():
                    stage_s.setdefault(k, []).extend(v)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
            for _ in range(args.per_round):
                s, who = cold(ragcli, cfg_path, questions[qi % len(questions)], env)
                qi += 1
                assert who == "local", "a server answered the local run"
                local.append(s)
            print(f"round {rnd + 1}: via serve {via_serve[-args.per_round:]}, local {local[-args.per_round:]}",
                  file=sys.stderr)  # fmt: skip
    load.append(loadavg())
    body = report(args, build_s, via_serve, local, rtt, stage_s, serve_start, load)
    print(body)
    store = "store not optimised" if args.no_optimize else "optimised store"
    fusion = f", fusion {args.fusion}" if args.fusion else ""
    write_section(
        f"Warm path: `ragcli query` through a running `ragcli serve` ({args.chunks:,} chunks, {store}{fusion})",
        body,
    )


def report(
    args: argparse.Namespace,
    build_s: float,
    via_serve: list[float],
    local: list[float],
    rtt: list[float],
    stage_s: dict[str, list[float]],
    serve_start: list[float],
    load: list[str],
) -> str:
    def row(label: str, xs: list[float]) -> str:
        med = statistics.median(xs)
        return f"| {label} | {len(xs)} | {med:.2f} | {min(xs):.2f} | {max(xs):.2f} |"

    ratio = statistics.median(local) / statistics.median(via_serve)
    stages = " · ".join(f"{k} {pct(v, 50) * 1000:.1f} ms" for k, v in stage_s.items())
    cmd = f"nice -n 10 python benchmarks/query_warm_path.py --chunks {args.chunks} --rounds {args.rounds} "
    cmd += f"--per-round {args.per_round} --warm {args.warm}" + (" --no-optimize" if args.no_optimize else "")
    cmd += f" --fusion {args.fusion}" if args.fusion else ""
    return (
        header(cmd) + f"- load average at start {load[0]}, at end {load[1]} (2 cores)\n\n"
        f"{args.chunks:,} chunks in one collection of the `local` preset (hybrid, fusion "
        f"`{args.fusion or 'packaged:minilm-scifact'}`: random unit dense vectors + "
        f"real BM25 sparse vectors of SciFact sentence windows; store {'not ' if args.no_optimize else ''}"
        f"optimised after writing; built in {build_s:.0f} s). SciFact test questions, embedded by MiniLM. "
        f"{args.rounds} rounds: server up -> cold CLI via serve, warm queries; server down -> cold CLI local.\n\n"
        "| cold `ragcli query --no-answer` (new process, start to exit) | runs | median s | min s | max s |\n"
        "| --- | --- | --- | --- | --- |\n"
        + row("answered by a running `ragcli serve` (warm path)", via_serve)
        + "\n"
        + row("no server: loads models and opens the store itself", local)
        + f"\n\n- local / warm path (medians): **{ratio:.1f}x**\n"
        f"- warm query, HTTP round trip to the server's route (no answer): p50 **{pct(rtt, 50) * 1000:.1f} ms**, "
        f"p90 {pct(rtt, 90) * 1000:.1f} ms over {len(rtt)} queries\n"
        f"- of which the pipeline's stages (p50): {stages}\n"
        f"- `ragcli serve` start to advertised (models loaded, store open): median "
        f"{statistics.median(serve_start):.1f} s\n"
    )


if __name__ == "__main__":
    main()
