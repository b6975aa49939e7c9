"""Gateway load, crash and isolation benchmark: the OpenAI-compatible gateway against calling the library directly.

    python benchmarks/gateway_load.py [--seconds 60] [--clients 50] [--state sqlite|postgres] [--out FILE]

Pipeline: qdrant-edge store, hash embedder, a scripted LLM priced at $1/$2 per million tokens (see
gateway_bench_server.py); 3 tenants x 30 short documents. Phases, in one run:
  1. direct: `answer()` from `--clients` threads for `--direct-seconds` (the library, no HTTP), then one thread.
  2. HTTP: the gateway in its own process (uvicorn, one worker), `--clients` concurrent async clients for
     `--seconds`, then one client; the gateway reports the pipeline's own seconds per request, so its overhead is
     the client's latency minus that. Key `acme` has a daily dollar limit that the run exhausts.
  3. audit: every answered request's query id in the ledger (embed_query + llm rows, exactly once), spent per key
     equal to the billed dollars in the ledger, never above the limit.
  4. kill -9 of the gateway during 20 concurrent clients, restart on the same state: integrity, no duplicated
     or half-written rows, the holds of the killed requests (left at their estimate) are the only difference.
  5. randomised multi-tenant trials over HTTP with hostile filters: citations from another tenant are counted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from gateway_bench_server import bench_config  # noqa: E402

from ragcli.config import parse_config  # noqa: E402
from ragcli.ingest.plain_text_parser import PlainTextParser  # noqa: E402
from ragcli.pipelines.ingest_pipeline import ingest  # noqa: E402
from ragcli.serve.key_store import issue_key  # noqa: E402
from ragcli.state.build import open_state  # noqa: E402

TENANTS = ("acme", "globex", "initech")
TOPICS = ["hotel", "password", "release", "laptop", "travel", "badge", "parking", "expense", "vpn", "backup"]
CAP_USD = 0.02  # acme's daily limit: the load phase runs into it (about 80 answers)
KILL_CAP_USD = 5.0  # the kill -9 phase's key: a limit, so its requests hold dollars when the server dies


def corpus(home: Path) -> None:
    from ragcli.pipelines.stages import Stages

    docs = home / "docs"
    cfg = parse_config(bench_config(home))
    stages = Stages.from_config(cfg, parser=PlainTextParser())
    for tenant in TENANTS:
        paths = []
        for i in range(30):
            topic = TOPICS[i % len(TOPICS)]
            p = docs / tenant / f"{tenant}-{i}.txt"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(
                f"{topic.title()} policy {i} of {tenant}\n\nThe {topic} rule {i} at {tenant} is code "
                f"{tenant.upper()}{i:03d}. Ask the {tenant} office about the {topic} rule before acting.\n"
            )
            paths.append(p)
        ingest(paths, stages, meta={"tenant": tenant})
    stages.close()


def pct(values: list[float]) -> dict[str, float]:
    a = np.asarray(values) * 1000.0
    return {"n": len(values), "p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
            "p99": float(np.percentile(a, 99))}  # fmt: skip


def question(rng: random.Random) -> str:
    return f"What is the {rng.choice(TOPICS)} rule?"


# ---------------------------------------------------------------- 1. direct


def direct(
    home: Path, dsn_env: str | None, seconds: float, clients: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    from gateway_bench_server import build

    from ragcli.pipelines.query_pipeline import QueryOptions, answer

    gw = build(home, dsn_env)
    stages = gw.pipelines["bench"]
    lat: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def loop(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < stop:
            t = rng.choice(TENANTS)
            t0 = time.perf_counter()
            answer(question(rng), stages, QueryOptions(where={"tenant": t}, tenant=f"direct-{t}"))
            with lock:
                lat.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    loaded = {**pct(lat), "rps": len(lat) / (time.perf_counter() - t0)}
    one: list[float] = []
    rng = random.Random(99)
    for _ in range(200):
        t0 = time.perf_counter()
        answer(question(rng), stages, QueryOptions(where={"tenant": "acme"}, tenant="direct-acme"))
        one.append(time.perf_counter() - t0)
    stages.close()
    gw.state.close()
    return loaded, pct(one)


# ---------------------------------------------------------------- 2. HTTP


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(home: Path, dsn_env: str | None) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    args = [sys.executable, str(ROOT / "benchmarks" / "gateway_bench_server.py"), str(home), str(port)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([*args, *([dsn_env] if dsn_env else [])], cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240  # a loaded machine starts a process slowly
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc, base + "/v1"
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the benchmark gateway did not start")


async def clients_run(
    base: str,
    keys: dict[str, str],
    seconds: float,
    clients: int,
    seed: int,
    sink: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = [] if sink is None else sink
    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients + 4)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:

        async def one(i: int) -> None:
            rng = random.Random(seed * 1000 + i)
            while time.monotonic() < stop:
                tenant = rng.choice(list(keys))
                body = {"model": "bench", "messages": [{"role": "user", "content": question(rng)}]}
                t0 = time.perf_counter()
                try:
                    r = await client.post(
                        "/chat/completions", json=body, headers={"Authorization": f"Bearer {keys[tenant]}"}
                    )
                except httpx.HTTPError as exc:
                    results.append({"tenant": tenant, "status": 0, "error": type(exc).__name__})
                    return  # the server is gone (the kill -9 phase): this client stops
                h = r.headers
                results.append({
                    "tenant": tenant, "status": r.status_code, "latency": time.perf_counter() - t0,
                    "pipeline": float(h.get("x-ragcli-pipeline-seconds", "nan")), "qid": h.get("x-ragcli-query-id"),
                    "usd": float(h["x-ragcli-cost-usd"]) if "x-ragcli-cost-usd" in h else None,
                    "sources": [c["source"] for c in r.json().get("citations", [])] if r.status_code == 200 else [],
                })  # fmt: skip

        await asyncio.gather(*(one(i) for i in range(clients)))
    return results


def http_summary(results: list[dict[str, Any]], wall: float) -> dict[str, Any]:
    ok = [r for r in results if r["status"] == 200]
    over = [r["latency"] - r["pipeline"] for r in ok]
    return {
        "latency": pct([r["latency"] for r in ok]), "pipeline": pct([r["pipeline"] for r in ok]),
        "overhead": pct(over), "rps": len(ok) / wall,
        "codes": {str(c): sum(1 for r in results if r["status"] == c) for c in sorted({r["status"] for r in results})},
    }  # fmt: skip


# ---------------------------------------------------------------- 3. audit


def audit(
    home: Path, dsn_env: str | None, results: list[dict[str, Any]], kids: dict[str, str]
) -> dict[str, Any]:
    state = open_state(parse_config(bench_config(home, dsn_env)))
    rows = state.ledger.rows()
    by_q: dict[str, list[Any]] = {}
    for r in rows:
        by_q.setdefault(r.query_id, []).append(r)
    answered = [r["qid"] for r in results if r["status"] == 200]
    lost = [q for q in answered if sorted(x.stage for x in by_q.get(q, [])) != ["embed_query", "llm"]]
    dup = [q for q, rs in by_q.items() if sum(1 for x in rs if x.stage == "llm") > 1]
    incomplete = [r for r in rows if not (r.ts and r.stage and r.model and r.status)]
    day = datetime.now(UTC).date().isoformat()
    money = {}
    for label, kid in kids.items():
        # A key's spending is the billed dollars of the queries made with it (its ledger tenant label is its own).
        spent = state.budgets.spent(f"key:{kid}:day:{day}")
        billed = sum((r.usd or 0.0) for r in rows if r.tenant == label and r.status == "ok")
        money[label] = {"spent": spent, "billed": billed, "diff": spent - billed}
    state.close()
    return {"rows": len(rows), "answered": len(answered), "lost": len(lost), "duplicated_llm": len(dup),
            "incomplete_rows": len(incomplete), "money": money}  # fmt: skip


def integrity(home: Path, dsn_env: str | None) -> str:
    if dsn_env:
        import psycopg

        with psycopg.connect(os.environ[dsn_env]) as conn:
            bad = conn.execute(
                "SELECT count(*) FROM budget_totals t WHERE t.usd <> coalesce((SELECT sum(h.usd) FROM budget_holds h "
                "WHERE h.scope = t.scope), 0)"
            ).fetchone()
        return "ok" if bad and bad[0] == 0 else f"{bad} budget totals differ from their holds"
    import sqlite3

    out = []
    for f in ("ledger.sqlite", "keys.sqlite"):
        with sqlite3.connect(home / f) as db:
            out.append(db.execute("PRAGMA integrity_check").fetchone()[0])
    return "ok" if set(out) == {"ok"} else str(out)


# ---------------------------------------------------------------- 4. kill -9


def kill_phase(home: Path, dsn_env: str | None, keys: dict[str, str], kids: dict[str, str]) -> dict[str, Any]:
    proc, base = start_server(home, dsn_env)

    async def run() -> list[dict[str, Any]]:
        done: list[dict[str, Any]] = []
        task = asyncio.create_task(clients_run(base, {"kill": keys["kill"]}, 120, 20, seed=7, sink=done))
        deadline = time.monotonic() + 60
        while sum(1 for r in done if r["status"] == 200) < 20 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)  # mid-request: 20 clients have requests in flight
        return await task

    before = audit(home, dsn_env, [], kids)["rows"]
    results = asyncio.run(run())
    proc.wait()
    proc2, base2 = start_server(home, dsn_env)
    after_restart = asyncio.run(clients_run(base2, {"kill": keys["kill"]}, 3, 5, seed=8))
    proc2.send_signal(signal.SIGTERM)
    proc2.wait(timeout=30)
    check = audit(home, dsn_env, results + after_restart, kids)
    hold = 512e-6 * 1.0 + 64 * 2e-6  # the worst-case hold of one query (window x input + max output x output)
    orphan = check["money"]["kill"]["diff"]
    return {
        "rows_before": before, "rows_after": check["rows"], "answered_before_kill": sum(1 for r in results if r["status"] == 200),
        "cut_by_kill": sum(1 for r in results if r["status"] == 0),
        "answered_after_restart": sum(1 for r in after_restart if r["status"] == 200),
        "after_restart_codes": sorted({r["status"] for r in after_restart}),
        "lost": check["lost"], "duplicated_llm": check["duplicated_llm"], "incomplete_rows": check["incomplete_rows"],
        "integrity": integrity(home, dsn_env), "orphan_holds_usd": orphan, "orphan_holds": orphan / hold,
    }  # fmt: skip


# ---------------------------------------------------------------- 5. tenant trials


async def tenant_trials(base: str, keys: dict[str, str], n: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    cross = answered = 0
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        for _ in range(n):
            own = rng.choice(TENANTS)
            other = rng.choice(TENANTS)
            where = rng.choice([
                None, f"tenant = '{other}'", "tenant != 'nobody'", f"tenant = '{own}' or tenant = '{other}'",
                {"tenant": {"in": list(TENANTS)}}, f"not tenant = '{own}'",
            ])  # fmt: skip
            q = f"What is code {other.upper()}{rng.randrange(30):03d} about the {rng.choice(TOPICS)} rule?"
            body: dict[str, Any] = {"model": "bench", "messages": [{"role": "user", "content": q}]}
            if where is not None:
                body["ragcli"] = {"where": where}
            r = await client.post(
                "/chat/completions", json=body, headers={"Authorization": f"Bearer {keys[own]}"}
            )
            if r.status_code != 200:
                continue
            answered += 1
            cross += sum(1 for c in r.json()["citations"] if f"/docs/{own}/" not in c["source"])
    return {"trials": n, "answered": answered, "cross_tenant_citations": cross}


# ---------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--direct-seconds", type=float, default=30.0)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--trials", type=int, default=500)
    ap.add_argument("--state", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--home", type=Path, default=None, help="work folder (default: a new temp folder)")
    ap.add_argument("--out", type=Path, default=None, help="append a markdown section to this file")
    args = ap.parse_args()
    import tempfile

    home = args.home or Path(tempfile.mkdtemp(prefix="ragcli-gw-bench-"))
    dsn_env = None
    cluster = None
    if args.state == "postgres":
        from tests.unit.postgres_support import start_local_cluster

        cluster = start_local_cluster("RAGCLI_PG_DSN")
        dsn_env = "RAGCLI_PG_DSN"
    try:
        report = run(home, dsn_env, args)
    finally:
        if cluster is not None:
            cluster.stop()
    text = render(report, args)
    print(text)
    if args.out:
        with args.out.open("a", encoding="utf-8") as f:
            f.write(text + "\n")


def run(home: Path, dsn_env: str | None, args: argparse.Namespace) -> dict[str, Any]:
    load0 = Path("/proc/loadavg").read_text().split()[:3]
    corpus(home)
    state = open_state(parse_config(bench_config(home, dsn_env)))
    keys: dict[str, str] = {}
    kids: dict[str, str] = {}
    # (label, scope tenant, daily limit): each key's label is its ledger tenant, so its rows can be told apart
    plan = [("acme", "acme", CAP_USD), ("globex", "globex", None), ("initech", "initech", None),
            ("kill", "initech", KILL_CAP_USD)] + [(f"trial-{t}", t, None) for t in TENANTS]  # fmt: skip
    for label, tenant, cap in plan:
        record, full = issue_key(label, {"tenant": tenant}, usd_per_day=cap)
        state.keys.add(record)
        keys[label] = full
        if cap is not None:
            kids[label] = record.key_id
    state.close()
    direct_loaded, direct_one = direct(home, dsn_env, args.direct_seconds, args.clients)
    proc, base = start_server(home, dsn_env)
    load_keys = {t: keys[t] for t in TENANTS}
    t0 = time.perf_counter()
    loaded = asyncio.run(clients_run(base, load_keys, args.seconds, args.clients, seed=1))
    http_loaded = http_summary(loaded, time.perf_counter() - t0)
    t0 = time.perf_counter()
    single = asyncio.run(clients_run(base, {"globex": keys["globex"]}, 20, 1, seed=2))
    http_one = http_summary(single[:200], time.perf_counter() - t0)
    trials = asyncio.run(tenant_trials(base, {t: keys[f"trial-{t}"] for t in TENANTS}, args.trials, seed=3))
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    checked = audit(home, dsn_env, loaded + single, kids)
    killed = kill_phase(home, dsn_env, keys, kids)
    load1 = Path("/proc/loadavg").read_text().split()[:3]
    return {"direct_loaded": direct_loaded, "direct_one": direct_one, "http_loaded": http_loaded, "http_one": http_one,
            "audit": checked, "kill": killed, "trials": trials, "load": (load0, load1), "home": str(home)}  # fmt: skip


def render(r: dict[str, Any], args: argparse.Namespace) -> str:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout
    dl, do, hl, ho = r["direct_loaded"], r["direct_one"], r["http_loaded"], r["http_one"]
    row = "| {} | {} | {:.1f} | {:.1f} | {:.1f} | {} |"
    lines = [
        f"### {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, state: {args.state}, commit {commit.strip()}",
        "",
        f"Command: `python benchmarks/gateway_load.py --seconds {args.seconds:g} --direct-seconds "
        f"{args.direct_seconds:g} --clients {args.clients} --trials {args.trials} --state {args.state}`; load average "
        f"before {' '.join(r['load'][0])}, after {' '.join(r['load'][1])} (2 cores shared with other engineers).",
        "",
        "| path | requests | p50 ms | p95 ms | p99 ms | throughput |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        row.format(f"library, {args.clients} threads", dl["n"], dl["p50"], dl["p95"], dl["p99"], f"{dl['rps']:.1f}/s"),
        row.format(f"gateway, {args.clients} clients: latency", hl["latency"]["n"], hl["latency"]["p50"],
                   hl["latency"]["p95"], hl["latency"]["p99"], f"{hl['rps']:.1f}/s"),
        row.format("  of which the pipeline", hl["pipeline"]["n"], hl["pipeline"]["p50"], hl["pipeline"]["p95"],
                   hl["pipeline"]["p99"], ""),
        row.format("  gateway overhead (latency - pipeline)", hl["overhead"]["n"], hl["overhead"]["p50"],
                   hl["overhead"]["p95"], hl["overhead"]["p99"], ""),
        row.format("library, 1 thread", do["n"], do["p50"], do["p95"], do["p99"], ""),
        row.format("gateway, 1 client: latency", ho["latency"]["n"], ho["latency"]["p50"], ho["latency"]["p95"],
                   ho["latency"]["p99"], ""),
        row.format("  gateway overhead, 1 client", ho["overhead"]["n"], ho["overhead"]["p50"], ho["overhead"]["p95"],
                   ho["overhead"]["p99"], ""),
        "",
        f"Status codes under load: {hl['codes']} (429: key `acme` reached its ${CAP_USD} daily limit).",
        "",
    ]  # fmt: skip
    a, k, t = r["audit"], r["kill"], r["trials"]
    money = "; ".join(
        f"{n}: spent ${m['spent']:.9f}, ledger ${m['billed']:.9f}, diff ${m['diff']:.2e}"
        for n, m in a["money"].items()
    )
    lines += [
        f"**Ledger audit**: {a['answered']} answered requests, {a['rows']} rows; lost {a['lost']}, duplicated llm rows "
        f"{a['duplicated_llm']}, incomplete rows {a['incomplete_rows']}. Budgets: {money} (acme's limit ${CAP_USD}).",
        "",
        f"**kill -9** with 20 clients in flight: {k['answered_before_kill']} answered before the kill, {k['cut_by_kill']} "
        f"requests cut; after restart {k['answered_after_restart']} answered (codes {k['after_restart_codes']}); "
        f"integrity {k['integrity']}; lost {k['lost']}, duplicated llm rows {k['duplicated_llm']}, incomplete rows "
        f"{k['incomplete_rows']}; holds of killed requests left at their estimate: ${k['orphan_holds_usd']:.6f} "
        f"(= {k['orphan_holds']:.2f} worst-case holds: the limit errs on the safe side until the day rolls over).",
        "",
        f"**Tenant trials**: {t['trials']} random requests with hostile filters, {t['answered']} answered, "
        f"**{t['cross_tenant_citations']} citations from another tenant**.",
        "",
    ]  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    main()
