"""Calibrate adaptive context on a tune split: retrieve once per question, then sweep packing settings.

For each question of the tune half (`--split tune`, the first half of the questions `qa_baselines.py` measures)
the real query pipeline retrieves once (`retrieve()` of `ragcli.pipelines.query_pipeline`, on the index
`ragcli eval qa` builds, with the question vectors and embedding cache of `qa_baselines.py`); then every packing
setting of the grid (relative-score cut-off, sentence selection, budget, compression ratio) packs those same hits
with the real `TokenBudgetPacker` and `SentenceCompressor`, builds the real messages and is scored like
`qa_baselines.py` (answer in context with the question removed, cl100k tokens of the whole prompt). Retrieving once
keeps the sweep to seconds per setting on a shared CPU; the chosen settings are then measured end to end, on the
report half, by `qa_baselines.py --split report --variant ...`.

Run: `.venv/bin/python benchmarks/qa_adaptive_calibrate.py [--sets hotpotqa nq] [--nq-limit 300] --out F.json`
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from qa_baselines import (  # noqa: E402
    SETS,
    CachedEmbedder,
    EmbeddingCache,
    QueryVectors,
    harness,
    load_split,
    parse_variant,
)

from ragcli.eval.qa_eval import score_prompt  # noqa: E402
from ragcli.eval.qa_index import collection_name, index_dataset  # noqa: E402
from ragcli.generation.compression_types import CompressionTarget  # noqa: E402
from ragcli.generation.prompts import build_messages  # noqa: E402
from ragcli.generation.sentence_compressor import SentenceCompressor  # noqa: E402
from ragcli.generation.sentence_model import load_sentence_model  # noqa: E402
from ragcli.generation.token_budget_packer import TokenBudgetPacker  # noqa: E402
from ragcli.ingest.build import build_embedder  # noqa: E402
from ragcli.pipelines.compress_step import block_similarity  # noqa: E402

log = logging.getLogger("qa_adaptive_calibrate")


def retrieve_all(set_name: str, spec: str, args: argparse.Namespace, cache: EmbeddingCache) -> dict[str, Any]:
    """Index (or reuse) the pooled corpus for the spec's config and retrieve once per tune question."""
    from ragcli.pipelines.query_pipeline import QueryOptions, new_recorder, retrieve
    from ragcli.pipelines.stages import Stages

    ds, items = load_split(Path(args.data) / SETS[set_name], set_name, args.limit, args.nq_limit, args.split)
    name, cfg = parse_variant(spec)
    cfg = cfg.model_copy(update={"collection": collection_name(ds, cfg)})
    queries = QueryVectors([q.question for q in items], cache, timed=3)
    st = Stages.from_config(cfg, embedder=CachedEmbedder(build_embedder(cfg.embedder), cache, queries))
    index = index_dataset(ds, st)
    opts = QueryOptions(no_answer=True)
    hits = []
    t0 = time.perf_counter()
    for item in items:
        hits.append(retrieve(item.question, st, opts, new_recorder(st, opts)).hits)
    log.info("%s %s: %d questions retrieved in %.0fs", set_name, name, len(items), time.perf_counter() - t0)
    model = (
        load_sentence_model(cfg.packing.sentence_model, cfg.home_dir())
        if cfg.packing.sentence_model
        else None
    )
    return {
        "ds": ds,
        "items": items,
        "hits": hits,
        "stages": st,
        "index": index,
        "name": name,
        "cfg": cfg,
        "sentence_model": model,
    }


def similarity_of(st: Any, question: str, ids: list[str]) -> Any:
    """The packed blocks' cosine with the question, as the query path reads them (the stored vectors)."""
    return block_similarity(st, st.embedder.embed_query(question).vectors[0].tolist(), ids)


def sweep(run: dict[str, Any], grid: list[dict[str, Any]], count: Any) -> list[dict[str, Any]]:
    """Pack the stored hits under every setting of the grid; answer-in-context and cl100k tokens per setting."""
    st, ds, cfg = run["stages"], run["ds"], run["cfg"]
    chunk_paragraph = run["index"].chunk_paragraph
    llm_count = st.llm.count_tokens
    out = []
    for g in grid:
        packer = g.get("packer") or TokenBudgetPacker(
            llm_count,
            select_sentences=g["select"],
            order=cfg.packing.order,
            min_relative_score=g["rel"],
            max_score_gap=g.get("gap"),
            sentence_model=run["sentence_model"] if g["select"] else None,
        )
        comp = g.get("compressor") or (
            SentenceCompressor(llm_count) if g["ratio"] or g.get("tokens") else None
        )
        system = g.get("system") or cfg.prompt.system
        hit_n = in_ctx = answerable = found = total = tokens = used_hits = 0
        for item, hits in zip(run["items"], run["hits"], strict=True):
            hits = hits[: g["top_k"]]
            ctx = packer.pack(item.question, hits, g["budget"])
            text = ctx.text
            if comp is not None and ctx.tokens >= 64:
                scores = {h.chunk.id: h.score for h in hits}
                extra: dict[str, Any] = {}
                if g.get("similarity"):  # the blocks' cosine with the question, read as the query path does
                    extra["block_similarity"] = functools.partial(
                        similarity_of, st, item.question, [c.chunk_id for c in ctx.citations]
                    )
                done = comp.compress(
                    item.question,
                    text,
                    CompressionTarget(ratio=g["ratio"], tokens=g.get("tokens")),
                    block_scores=[scores.get(c.chunk_id, 0.0) for c in ctx.citations],
                    **extra,
                )
                text = done.text
            messages = build_messages(system, text, item.question, [])
            prompt = "\n".join(m.content for m in messages)
            used = sorted({chunk_paragraph.get(c.chunk_id, "") for c in ctx.citations} - {""})
            a, _, f = score_prompt(item, prompt, ds.paragraphs, used)
            hit_n += 1
            used_hits += ctx.hits_used
            tokens += sum(count(m.content) for m in messages)
            found += f
            total += len(item.supporting)
            if a is not None:
                answerable += 1
                in_ctx += int(a)
        out.append(
            {
                **{k: v for k, v in g.items() if k not in ("system", "packer", "compressor")},
                "aic": in_ctx / max(answerable, 1),
                "tokens": tokens / max(hit_n, 1),
                "recall": found / max(total, 1),
                "hits_used": used_hits / max(hit_n, 1),
            }
        )
        r = out[-1]
        log.info(
            "%s %s: aic %.3f tokens %.0f hits %.2f",
            run["name"],
            {k: v for k, v in g.items() if k not in ("system", "packer", "compressor")},
            r["aic"],
            r["tokens"],
            r["hits_used"],
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--sets", nargs="+", default=["hotpotqa", "nq"], choices=sorted(SETS))
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--nq-limit", type=int, default=300)
    ap.add_argument("--split", choices=["tune", "report", "all"], default="tune")
    ap.add_argument(
        "--spec",
        action="append",
        default=[],
        help="NAME=PRESET,key=value,... whose retrieval feeds the sweep (default: local hybrid and dense, top 8)",
    )
    ap.add_argument("--rel", nargs="+", type=float, default=[0.0, 0.55, 0.7, 0.8, 0.9])
    ap.add_argument("--budgets", nargs="+", type=int, default=[128, 256, 512])
    ap.add_argument(
        "--chunk-budgets",
        nargs="+",
        type=int,
        default=[256, 512, 1024],
        help="budgets of the whole-chunk packer",
    )
    ap.add_argument(
        "--chunk-top-k", nargs="+", type=int, default=[4, 8], help="hits the whole-chunk packer may pack"
    )
    ap.add_argument("--no-chunks", action="store_true", help="sweep only sentence selection")
    ap.add_argument("--no-sentences", action="store_true", help="sweep only whole chunks")
    ap.add_argument("--ratios", nargs="+", type=float, default=[0.0, 3.0])
    ap.add_argument(
        "--targets",
        nargs="+",
        type=int,
        default=[],
        help="also: whole chunks of the top 4/8/12 packed at 1,024 tokens, then compressed to each token cap",
    )
    ap.add_argument("--only-targets", action="store_true", help="sweep only the --targets settings")
    ap.add_argument("--out", default="/tmp/qa_adaptive_calibrate.json")
    args = ap.parse_args(argv)
    specs = args.spec or [
        "hybrid=local,retrieval.top_k=8",
        "dense=local,retrieval.mode=dense,retrieval.top_k=8",
    ]
    count, cache = harness()
    results: list[dict[str, Any]] = []
    for set_name in args.sets:
        for spec in specs:
            run = retrieve_all(set_name, spec, args, cache)
            # whole chunks (the `local` packer) from the top 4 (today's `local`) or 8, optionally compressed after;
            # sentence selection (the `lean` packer) from the top 8
            targets = [
                {"select": False, "rel": None, "budget": 1024, "ratio": None, "tokens": t, "top_k": k}
                for k, t in itertools.product([4, 8, 12], args.targets)
            ]
            grid = (
                targets
                if args.only_targets
                else targets
                + [
                    {"select": False, "rel": rel or None, "budget": b, "ratio": ratio or None, "top_k": k}
                    for k, rel, b, ratio in itertools.product(
                        args.chunk_top_k, args.rel, args.chunk_budgets, args.ratios
                    )
                    if not args.no_chunks
                ]
                + [
                    {"select": True, "rel": rel or None, "budget": b, "ratio": None, "top_k": 8}
                    for rel, b in itertools.product(args.rel, args.budgets)
                    if not args.no_sentences
                ]
            )
            for r in sweep(run, grid, count):
                results.append({"set": set_name, "retrieval": run["name"], **r})
            Path(args.out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
