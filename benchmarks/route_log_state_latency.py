"""What keeping the route log in PostgreSQL costs a query: `answer()` with the route log (tier, sources) in the
shared PostgreSQL state against the per-host SQLite file, side by side in one process.

    python benchmarks/route_log_state_latency.py [--queries 300] [--out FILE]

Pipeline: the gateway benchmark's (`gateway_bench_server.py`: qdrant-edge store, hash embedder, a scripted LLM,
3 tenants x 30 short documents), its ledger and budgets in PostgreSQL (a throwaway local cluster, as the tests
start one). The two route logs alternate query by query, so load changes hit both alike; each query writes its
route and its numbered sources (two transactions). Reports p50/p95 of `answer()` and the route log's own share.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from gateway_bench_server import build  # noqa: E402
from gateway_load import TENANTS, corpus, pct, question  # noqa: E402
from trained_common import commit, loadavg, machine  # noqa: E402

from ragcli.generation.route_log import RouteLog  # noqa: E402
from ragcli.pipelines.query_pipeline import QueryOptions, answer  # noqa: E402
from ragcli.state.postgres_route_log import PostgresRouteLog  # noqa: E402


class Timed:
    """A route log whose writes are timed (seconds per query, added up)."""

    def __init__(self, log: RouteLog) -> None:
        self.log = log
        self.spent = 0.0

    def __getattr__(self, name: str) -> object:
        target = getattr(self.log, name)
        if name not in ("record_route", "record_sources"):
            return target

        def timed(*args: object, **kw: object) -> object:
            t = time.perf_counter()
            try:
                return target(*args, **kw)
            finally:
                self.spent += time.perf_counter() - t

        return timed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=300, help="per route log")
    ap.add_argument("--out", type=Path, default=None, help="append a markdown section to this file")
    args = ap.parse_args()
    from tests.unit.postgres_support import start_local_cluster

    cluster = start_local_cluster("RAGCLI_PG_DSN")
    home = Path(tempfile.mkdtemp(prefix="ragcli-routelog-bench-"))
    load0, started = loadavg(), datetime.now(UTC)
    try:
        corpus(home)
        gw = build(home, "RAGCLI_PG_DSN")
        stages = gw.pipelines["bench"]
        assert stages.shared_state is not None and stages.shared_state.db is not None
        logs = {
            "PostgreSQL (shared state)": Timed(PostgresRouteLog(stages.shared_state.db)),
            "SQLite file (per host)": Timed(RouteLog(home / "ledger.sqlite")),
        }
        rng = random.Random(0)
        seconds: dict[str, list[float]] = {k: [] for k in logs}
        own: dict[str, list[float]] = {k: [] for k in logs}
        for i in range(args.queries * len(logs) + 2 * len(logs)):
            name = list(logs)[i % len(logs)]
            log = logs[name]
            stages.__dict__["route_log"] = log
            before = log.spent
            t = time.perf_counter()
            answer(question(rng), stages, QueryOptions(tenant=rng.choice(TENANTS)))
            if i >= 2 * len(logs):  # the first two rounds warm up
                seconds[name].append(time.perf_counter() - t)
                own[name].append(log.spent - before)
        stages.close()
        gw.state.close()
    finally:
        cluster.stop()
    lines = [
        f"### Route log on PostgreSQL vs the SQLite file ({started:%Y-%m-%d %H:%M} UTC, commit {commit()})",
        "",
        f"Command: `python benchmarks/route_log_state_latency.py --queries {args.queries}`; machine: {machine()}; "
        f"load average before {load0}, after {loadavg()}.",
        "",
        "| route log | queries | answer() p50 ms | p95 ms | route log writes p50 ms | p95 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in logs:
        a, w = pct(seconds[name]), pct(own[name])
        lines.append(
            f"| {name} | {a['n']} | {a['p50']:.2f} | {a['p95']:.2f} | {w['p50']:.2f} | {w['p95']:.2f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with args.out.open("a", encoding="utf-8") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    main()
