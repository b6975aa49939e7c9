"""What a cold candidate costs the sentences fusion: embedding the sentences of 20 SciFact documents, per back-end.

    nice -n 10 .venv/bin/python benchmarks/sentence_vectors_speed.py [--data DIR] [BACKEND ...]

Five random sets of 20 documents (seed 0), each split as `ragcli.retrieval.sentence_vectors` splits a chunk (its
lines, then sentences), embedded in one call by the packaged embedder on each back-end given (default: `onnx`,
`openvino_int8`, twice each, interleaved); prints the sentences and milliseconds per set. The first
`openvino_int8` set includes its one-time quantization.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from trained_common import scifact_split  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("RAGCLI_DATA") or str(ROOT.parent / "shared" / "data"))
    ap.add_argument("backends", nargs="*", default=["onnx", "openvino_int8", "onnx", "openvino_int8"])
    args = ap.parse_args()
    from ragcli.resources import offline_env

    offline_env()
    from ragcli.config import load_config
    from ragcli.ingest.build import build_embedder
    from ragcli.retrieval.sentence_vectors import segments

    corpus, *_ = scifact_split(Path(args.data))
    docs = list(corpus.values())
    for backend in args.backends:
        emb = build_embedder(load_config(None, overrides={"embedder": {"backend": backend}}).embedder)
        emb.embed(["warm up"])
        rnd = random.Random(0)
        for _ in range(5):
            sents = [s for d in rnd.sample(docs, 20) for s in segments(d.full_text)]
            t0 = time.perf_counter()
            emb.embed(sents)
            print(
                f"{backend:14s} {len(sents):4d} sentences {1000 * (time.perf_counter() - t0):7.0f} ms",
                flush=True,
            )


if __name__ == "__main__":
    main()
