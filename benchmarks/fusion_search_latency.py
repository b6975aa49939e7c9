"""The search step with the `local` preset's packaged fusion vs the store's RRF, in-process, at 100k chunks.

    nice -n 10 .venv/bin/python benchmarks/fusion_search_latency.py [--chunks 100000] [--questions 60]

Builds the same collection as `query_warm_path.py` (SciFact sentence windows with real BM25 vectors and random
unit dense vectors, optimised) in a temporary home, embeds `--questions` SciFact test questions once, then times
`search_hits` (the query path's search step) per question for the fused and the RRF config, alternating passes
fused, rrf, fused, rrf (or rrf first with --rrf-first): the first pass meets the store's pages cold, later ones
warm. Also times one dense search
of 100 hits with and without payloads (what a payload-light fused search could save). Prints its results.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("RAGCLI_DATA") or str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--questions", type=int, default=60)
    ap.add_argument("--rrf-first", action="store_true", help="alternate rrf, fused, ... instead")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_s:
        home = Path(tmp_s) / "home"
        os.environ["RAGCLI_HOME"] = str(home)
        import query_warm_path as warm

        from ragcli.config import load_config
        from ragcli.pipelines.query_pipeline import search_hits
        from ragcli.pipelines.stages import Stages

        preset = (ROOT / "ragcli" / "pipelines" / "presets" / "local.yaml").read_text(encoding="utf-8")
        cfg_path = Path(tmp_s) / "local.yaml"
        cfg_path.write_text(preset.replace("collection: default", f"collection: warm\nhome: {home}"))
        cfg = load_config(str(cfg_path))
        src = Path(args.data) / "scifact_beir"
        built = warm.build_store(cfg, src / "corpus.jsonl", args.chunks, True)
        print(f"built {args.chunks:,} chunks in {built:.0f} s; fusion {cfg.retrieval.fusion}", flush=True)
        st = Stages.from_config(cfg)
        try:
            lines = (src / "queries.jsonl").read_text(encoding="utf-8").splitlines()
            texts = [json.loads(line)["text"] for line in lines[: args.questions]]
            assert st.sparse_encoder is not None
            qs = [
                (st.embedder.embed_query(t).vectors[0].tolist(), st.sparse_encoder.encode_query(t))
                for t in texts
            ]
            rrf_cfg = cfg.model_copy(update={"retrieval": cfg.retrieval.model_copy(update={"fusion": "rrf"})})
            shared = {"store": st.store, "embedder": st.embedder, "sparse_encoder": st.sparse_encoder}
            order = (
                [("rrf", rrf_cfg), ("fused", cfg)] if args.rrf_first else [("fused", cfg), ("rrf", rrf_cfg)]
            )
            for n, (label, c) in enumerate(order * 2):
                run = Stages.from_config(c, **shared)
                times = []
                for dense, sparse in qs:
                    t0 = time.perf_counter()
                    search_hits(run, dense, sparse, None, c.retrieval.candidates)
                    times.append(time.perf_counter() - t0)
                times.sort()
                print(
                    f"pass {n + 1} {label}: search step p50 {1000 * statistics.median(times):.2f} ms, "
                    f"p90 {1000 * times[int(0.9 * len(times))]:.2f} ms over {len(times)} questions",
                    flush=True,
                )
            import qdrant_edge as q

            from ragcli.retrieval.payload import DENSE, dense_list

            shard = st.store._require()  # type: ignore[attr-defined]
            for with_payload in (True, False):
                req = q.QueryRequest(
                    limit=100,
                    query=q.Query.Nearest(dense_list(qs[0][0]), using=DENSE),
                    with_payload=with_payload,
                )
                times = []
                for _ in range(30):
                    t0 = time.perf_counter()
                    shard.query(req)
                    times.append(time.perf_counter() - t0)
                print(
                    f"one dense search of 100, payload {with_payload}: p50 {1000 * statistics.median(times):.2f} ms"
                )
        finally:
            st.close()


if __name__ == "__main__":
    main()
