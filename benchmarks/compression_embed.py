"""Does the embedder's question-sentence similarity (`compression.use_embeddings`) help `SentenceCompressor`?

Answer kept at 3x and 5x on both HotpotQA halves (each question's own ~10 paragraphs), lexical scores alone
against lexical + MiniLM similarity at several weights; sentence embeddings are cached in memory, so the first
weighted run of a half pays for embedding and the others reuse it.

    .venv/bin/python benchmarks/compression_embed.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from compression import answer_kept, hotpot_halves  # noqa: E402

from ragcli.cost.tokens import counter_for  # noqa: E402
from ragcli.generation.sentence_compressor import SentenceCompressor  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--weights", nargs="+", type=float, default=[0.5, 1.0, 2.0])
    args = ap.parse_args()
    from ragcli.resources import offline_env

    offline_env()
    import numpy as np

    from ragcli.config import PipelineConfig
    from ragcli.ingest.build import build_embedder

    embedder = build_embedder(PipelineConfig().embedder)
    cache: dict[str, np.ndarray] = {}

    def embed(texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in cache]
        if missing:
            vectors = np.asarray(embedder.embed(missing).vectors, dtype=np.float32)
            cache.update(zip(missing, vectors, strict=True))
        return np.stack([cache[t] for t in texts])

    count = counter_for("gpt-4").count
    halves = hotpot_halves(args.data)
    print("| half | embed weight | 3x kept | 5x kept | seconds |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for split, its in zip(("tune", "report"), halves, strict=True):
        for w in [0.0, *args.weights]:
            comp = SentenceCompressor(count, embed=embed if w else None, embed_weight=w or 1.0)
            t0 = time.perf_counter()
            kept = [answer_kept(comp, its, ratio) for ratio in (3.0, 5.0)]
            took = time.perf_counter() - t0
            print(f"| {split} | {w or '-'} | {kept[0]:.1%} | {kept[1]:.1%} | {took:.0f} |", flush=True)


if __name__ == "__main__":
    main()
