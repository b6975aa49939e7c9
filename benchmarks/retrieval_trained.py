"""SciFact: which model trained on the user's labels lifts hybrid retrieval, and does it pass its gate?

    nice -n 10 .venv/bin/python benchmarks/retrieval_trained.py [--data DIR] [--home DIR] [--phase ...]

Splits the TRAIN qrels' queries (seed 0) into fit (60 %: models train here), fuse (20 %: the learned fusion
trains here) and gate (20 %: the deployment gate, never trained on); reports every run on the TEST qrels.
Runs: dense, BM25, hybrid (exact, in memory: what the store's exact search and RRF return), and on top of
hybrid: (a) the embedder fine-tuned with in-batch negatives (hybrid with its dense half replaced), (b) a
cross-encoder with hard and random negatives and a weighted BCE, re-ordering hybrid's top 20, (c) a
late-interaction MaxSim score over the base encoder's token embeddings (no training), (d) a logistic
regression over dense/BM25/late-interaction/cross-encoder scores and ranks, (e) the score fusion that ships as
`ragcli train fusion` (dense and BM25 scores, ranks and per-query gaps and z-scores; fitted on fit + fuse).

Heavy intermediate results (corpus vectors, token vectors, model scores) are cached under `<home>/bench-cache`,
so a phase that was run is not run again. Writes benchmarks/results/retrieval_trained.md (SciFact section);
`retrieval_trained_qa.py` and `rerank_latency.py` add the HotpotQA and latency sections.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from trained_common import (  # noqa: E402
    base_encode,
    bench_parser,
    cache_path,
    commit,
    enter_home,
    late_interaction_scores,
    loadavg,
    logistic_fit,
    machine,
    replace_section,
    scifact_split,
)

PHASES = ("base", "embedder", "late", "cross", "fusion")


def train_models(
    args: Any,
    home: Path,
    corpus: Any,
    qtext: Any,
    fit: Any,
    bm: Any,
    doc_ids: list[str],
    ename: str,
    epath: Path,
    cname: str,
    cpath: Path,
    timings: dict[str, float],
) -> None:
    """Train the embedder (a) and the cross-encoder (b) of --phase on the fit split, unless already trained."""
    from ragcli.train.cross_encoder_training import Pair
    from ragcli.train.embedder_training import CARD as ECARD
    from ragcli.train.embedder_training import train_embedder
    from ragcli.train.reranker_training import train_reranker

    if "embedder" in args.phase and not (epath / ECARD).is_file():
        pairs = [
            Pair(qtext[q], corpus[d].full_text, 1.0)
            for q in fit
            for d, g in fit[q].items()
            if g > 0 and d in corpus
        ]
        rep = train_embedder(
            pairs,
            name=ename,
            epochs=args.emb_epochs,
            learning_rate=args.emb_lr,
            batch_size=args.emb_batch,
            home=home,
            data={"qrels": "scifact train, fit split (60 %)", "queries": len(fit)},
            on_step=lambda s, t, loss: (
                print(f"  embedder step {s}/{t} loss {loss:.3f}", flush=True) if s % 5 == 0 else None
            ),
        )
        timings["embedder training s"] = rep.seconds
    if "cross" in args.phase and not (cpath / "config.json").is_file():
        # hard negatives: BM25 ranks 10-40 that are not judged (the very top is skipped: SciFact's unjudged top
        # hits are often relevant); random negatives keep the score scale honest for easy documents
        rng = random.Random(0)
        fq = sorted(fit)
        ranked = dict(zip(fq, bm.rank([qtext[q] for q in fq], 40), strict=True))
        pairs = []
        for q in fq:
            pos = {d for d, g in fit[q].items() if g > 0}
            pairs += [Pair(qtext[q], corpus[d].full_text, 1.0) for d in pos if d in corpus]
            hard = [d for d, _ in ranked[q][10:40] if d not in fit[q]]
            pairs += [
                Pair(qtext[q], corpus[d].full_text, 0.0)
                for d in rng.sample(hard, min(args.ce_hard, len(hard)))
            ]
            rand = [d for d in rng.sample(doc_ids, args.ce_random + 3) if d not in fit[q]][: args.ce_random]
            pairs += [Pair(qtext[q], corpus[d].full_text, 0.0) for d in rand]
        rep2 = train_reranker(
            pairs,
            name=cname,
            epochs=args.ce_epochs,
            learning_rate=args.ce_lr,
            max_length=args.ce_max_length,
            home=home,
            negatives_source="BM25 ranks 10-40 (unjudged) + random",
            data={"qrels": "scifact train, fit split (60 %)", "queries": len(fit)},
            on_step=lambda s, t, loss: (
                print(f"  cross-encoder step {s}/{t} loss {loss:.3f}", flush=True) if s % 10 == 0 else None
            ),
        )
        timings["cross-encoder training s"] = rep2.seconds


def main() -> None:
    ap = bench_parser(__doc__)
    ap.add_argument("--phase", nargs="*", default=list(PHASES), choices=PHASES)
    ap.add_argument("--emb-epochs", type=int, default=1)
    ap.add_argument("--emb-lr", type=float, default=2e-5)
    ap.add_argument("--emb-batch", type=int, default=32)
    ap.add_argument("--ce-epochs", type=int, default=1)
    ap.add_argument("--ce-lr", type=float, default=5e-5)
    ap.add_argument("--ce-max-length", type=int, default=128)
    ap.add_argument(
        "--ce-hard", type=int, default=2, help="hard negatives per fit query (hybrid ranks 10-40)"
    )
    ap.add_argument("--ce-random", type=int, default=2, help="random negatives per fit query")
    ap.add_argument("--depth", type=int, default=20, help="candidates re-ordered on top of hybrid")
    ap.add_argument("--train-only", action="store_true", help="train the models of --phase and stop")
    ap.add_argument(
        "--limit-queries",
        type=int,
        default=None,
        help="smoke runs: at most N queries per split (not for results)",
    )
    ap.add_argument(
        "--limit-docs",
        type=int,
        default=None,
        help="smoke runs: judged documents + N others (not for results)",
    )
    args = ap.parse_args()

    home = enter_home(args)
    import numpy as np

    from ragcli.eval.metrics import evaluate
    from ragcli.retrieval.bm25_sparse_encoder import Bm25SparseEncoder
    from ragcli.train.deployment_gate import paired_bootstrap, per_query_ndcg, write_verdict
    from ragcli.train.exact_ranking import Bm25Index, as_run, dense_rank, hybrid_rank, rerank_head

    t_start = time.time()
    load_start = loadavg()
    corpus, qtext, train, test, fit_q, fuse_q, gate_q = scifact_split(Path(args.data))
    n = len(train)
    fit = {q: train[q] for q in fit_q}
    fuse = {q: train[q] for q in fuse_q}
    gate = {q: train[q] for q in gate_q}
    if args.limit_queries:
        fit, fuse, gate, test = (
            {q: r for q, r in list(x.items())[: args.limit_queries]} for x in (fit, fuse, gate, test)
        )
        args.out = str(Path(args.out).with_suffix(".smoke.md"))
    if args.limit_docs:
        judged = {d for x in (fit, fuse, gate, test) for r in x.values() for d in r}
        keep = judged | set(list(corpus)[: args.limit_docs])
        corpus = {d: doc for d, doc in corpus.items() if d in keep}
        home = home / "smoke"
    doc_ids = list(corpus)
    texts = [corpus[d].full_text for d in doc_ids]
    eval_q = sorted(set(test) | set(fuse) | set(gate))
    all_q = sorted(set(eval_q) | set(fit))
    print(f"split: fit {len(fit)}, fuse {len(fuse)}, gate {len(gate)}, test {len(test)} queries", flush=True)

    bm = Bm25Index(doc_ids, texts, Bm25SparseEncoder())
    ename = f"scifact-mnrl-e{args.emb_epochs}-lr{args.emb_lr:g}-b{args.emb_batch}"
    epath = home / "embedders" / ename
    cname = f"scifact-ce-h{args.ce_hard}-r{args.ce_random}-e{args.ce_epochs}-lr{args.ce_lr:g}-L{args.ce_max_length}"
    cpath = home / "rerankers" / cname
    timings: dict[str, float] = {}
    train_models(args, home, corpus, qtext, fit, bm, doc_ids, ename, epath, cname, cpath, timings)
    if args.train_only:
        return

    # ---- base: BM25 + the packaged encoder's vectors (and token vectors, for late interaction)
    base = base_encode(cache_path(home, "base-corpus"), texts, tokens=True)
    qbase = base_encode(cache_path(home, "base-queries"), [qtext[q] for q in all_q], tokens=True)
    qrow = {q: i for i, q in enumerate(all_q)}

    def rankings(qvecs: Any, qs: list[str]) -> tuple[list[Any], list[Any], list[Any]]:
        dense = dense_rank(qvecs, base["vectors"], doc_ids, 200)
        sparse = bm.rank([qtext[q] for q in qs], 200)
        return dense, sparse, hybrid_rank(dense, sparse, k=60, limit=100)

    dense_b, sparse_b, hybrid_b = rankings(qbase["vectors"], all_q)
    R = {
        "dense": as_run(all_q, dense_b),
        "BM25": as_run(all_q, sparse_b),
        "hybrid (RRF k=60)": as_run(all_q, hybrid_b),
    }
    hybrid_by_q = dict(zip(all_q, hybrid_b, strict=True))
    dense_by_q = dict(zip(all_q, dense_b, strict=True))
    sparse_by_q = dict(zip(all_q, sparse_b, strict=True))
    notes: dict[str, str] = {}
    gates: dict[str, Any] = {}

    def gate_of(name: str, run: dict[str, list[str]], card: Path | None = None) -> None:
        verdict = paired_bootstrap(
            per_query_ndcg(R["hybrid (RRF k=60)"], gate),
            per_query_ndcg(run, gate),
            baseline_name="hybrid",
            candidate_name=name,
        )
        gates[name] = verdict
        print(verdict.summary(), flush=True)
        if card is not None:
            write_verdict(card, verdict)

    # ---- (a) contrastive fine-tuning of the embedder (in-batch negatives)
    if "embedder" in args.phase:
        from ragcli.ingest.sentence_transformer_embedder import SentenceTransformerEmbedder
        from ragcli.train.embedder_training import CARD as ECARD

        cp = cache_path(home, f"{ename}-corpus")
        if cp.is_file():
            dvec = np.load(cp)
        else:
            t0 = time.perf_counter()
            dvec = SentenceTransformerEmbedder(str(epath)).embed(texts).vectors
            timings["embedder re-embed corpus s"] = round(time.perf_counter() - t0, 1)
            np.save(cp, dvec)
        qvec = SentenceTransformerEmbedder(str(epath)).embed([qtext[q] for q in all_q]).vectors
        dense_t = dense_rank(qvec, dvec, doc_ids, 200)
        R["dense, fine-tuned embedder (a)"] = as_run(all_q, dense_t)
        hy = hybrid_rank(dense_t, sparse_b, k=60, limit=100)
        R["hybrid, fine-tuned embedder (a)"] = as_run(all_q, hy)
        notes["hybrid, fine-tuned embedder (a)"] = f"`trained:{ename}`; corpus re-embedded"
        gate_of("hybrid, fine-tuned embedder (a)", R["hybrid, fine-tuned embedder (a)"], epath / ECARD)

    # ---- (c) late interaction: MaxSim over the base encoder's token vectors, no training
    li: dict[str, dict[str, float]] = {}
    if "late" in args.phase or "fusion" in args.phase:
        toks = base
        row = {d: i for i, d in enumerate(doc_ids)}
        for q in eval_q:
            cands = [d for d, _ in hybrid_by_q[q][: args.depth]]
            li[q] = late_interaction_scores(qbase, qrow[q], toks, [row[d] for d in cands], cands)
        R[f"hybrid + late interaction top {args.depth} (c)"] = {
            q: [d for d, _ in rerank_head(hybrid_by_q[q], li[q], args.depth)] for q in eval_q
        }
        gate_of(
            f"hybrid + late interaction top {args.depth} (c)",
            R[f"hybrid + late interaction top {args.depth} (c)"],
        )

    # ---- (b) cross-encoder: hard (hybrid ranks 10-40, unjudged) + random negatives, weighted BCE
    ce: dict[str, dict[str, float]] = {}
    if "cross" in args.phase or "fusion" in args.phase:
        from trained_common import cross_encoder_scores

        sp = cache_path(home, f"{cname}-scores", ".json")
        if sp.is_file():
            ce = json.loads(sp.read_text())
        else:
            t0 = time.perf_counter()
            ce = cross_encoder_scores(
                cpath,
                {q: qtext[q] for q in eval_q},
                {q: [d for d, _ in hybrid_by_q[q][: args.depth]] for q in eval_q},
                corpus,
                args.ce_max_length,
            )
            timings["cross-encoder scoring s"] = round(time.perf_counter() - t0, 1)
            sp.write_text(json.dumps(ce))
        key = f"hybrid + cross-encoder top {args.depth} (b)"
        R[key] = {q: [d for d, _ in rerank_head(hybrid_by_q[q], ce[q], args.depth)] for q in eval_q}
        notes[key] = f"`{cname}`"
        gate_of(key, R[key], cpath / "ragcli_reranker.json")

    # ---- (d) learned fusion over scores and ranks, trained on the fuse split
    if "fusion" in args.phase:

        def feats(q: str) -> tuple[list[str], Any]:
            cands = [d for d, _ in hybrid_by_q[q][: args.depth]]
            dr = {d: (i, s) for i, (d, s) in enumerate(dense_by_q[q])}
            sr = {d: (i, s) for i, (d, s) in enumerate(sparse_by_q[q])}
            smax = max((s for _, s in sparse_by_q[q]), default=1.0) or 1.0
            rows = []
            for i, d in enumerate(cands):
                di, ds = dr.get(d, (200, 0.0))
                si, ss = sr.get(d, (200, 0.0))
                rows.append(
                    [
                        ds,
                        ss / smax,
                        1 / (60 + di + 1),
                        1 / (60 + si + 1),
                        1 / (i + 1),
                        li.get(q, {}).get(d, 0.0),
                        ce.get(q, {}).get(d, 0.0),
                    ]
                )
            return cands, np.asarray(rows, dtype=np.float64)

        X, y = [], []
        for q in fuse:
            cands, f = feats(q)
            X.append(f)
            y += [1.0 if fuse[q].get(d, 0) > 0 else 0.0 for d in cands]
        w = logistic_fit(np.vstack(X), np.asarray(y))
        fused = {}
        for q in eval_q:
            cands, f = feats(q)
            sc = f @ w[:-1] + w[-1]
            fused[q] = dict(zip(cands, sc.tolist(), strict=True))
        key = f"hybrid + learned fusion top {args.depth} (d)"
        R[key] = {q: [d for d, _ in rerank_head(hybrid_by_q[q], fused[q], args.depth)] for q in eval_q}
        notes[key] = "weights: " + ", ".join(f"{x:+.2f}" for x in w)
        gate_of(key, R[key])

    # ---- (e) the trained score fusion as it ships (`ragcli train fusion`): dense and BM25 scores, ranks and
    # per-query gaps/z-scores, no model at query time; fitted on fit + fuse (it uses no trained model), gated
    if "fusion" in args.phase:
        from ragcli.train.fusion_training import fit_fusion, gate_fusion, training_rows

        pf = 100  # what the query path's two searches return (the model's prefetch)
        tr = sorted(set(fit) | set(fuse))
        x, y = training_rows(
            [dense_by_q[q][:pf] for q in tr],
            [sparse_by_q[q][:pf] for q in tr],
            [train[q] for q in tr],
            depth=args.depth,
            rrf_k=60,
            prefetch=pf,
        )
        model = fit_fusion("scifact-bench", x, y, depth=args.depth, rrf_k=60, prefetch=pf)
        key = "hybrid + trained score fusion (e) (`ragcli train fusion`)"
        R[key] = {q: [d for d, _ in model.fuse(dense_by_q[q][:pf], sparse_by_q[q][:pf], 100)] for q in all_q}
        notes[key] = f"fitted on {len(tr)} fit + fuse queries, {int(y.sum())} relevant of {len(y)} candidates"
        gate_q_ids = sorted(gate)
        verdict = gate_fusion(
            model,
            [dense_by_q[q][:pf] for q in gate_q_ids],
            [sparse_by_q[q][:pf] for q in gate_q_ids],
            [gate[q] for q in gate_q_ids],
            [hybrid_by_q[q] for q in gate_q_ids],
        )
        gates[key] = verdict
        print(verdict.summary(), flush=True)

    # ---- report
    rows = []
    for name, run in R.items():
        m = evaluate(run, test, ndcg_k=(10,), recall_k=(10, 100), mrr_k=(10,))
        g = gates.get(name)
        rows.append((name, m, g))
        print(f"{name:50s} nDCG@10 {m['ndcg@10']:.4f} R@10 {m['recall@10']:.4f}", flush=True)
    hyb = evaluate(R["hybrid (RRF k=60)"], test)["ndcg@10"]
    lines = [
        "# Trained retrieval models on SciFact (issue 15)",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(t_start))}; commit `{commit()}`; machine: {machine()}",
        f"- load average at start / end: {load_start} / {loadavg()} (2 cores shared with ~7 other engineers' jobs)",
        f"- command: `nice -n 10 .venv/bin/python benchmarks/retrieval_trained.py {' '.join(sys.argv[1:])}`",
        f"- split of the TRAIN qrels' {n} queries (seed 0): fit {len(fit)} (models train here), fuse {len(fuse)} "
        f"(fusion weights), gate {len(gate)} (deployment gate only); reported on the {len(test)} TEST queries.",
        f"- dense/BM25/hybrid are exact in-memory searches over the {len(doc_ids):,} documents (title + text, 256 tokens) with "
        "the store's BM25 encoder and IDF and RRF k=60 over 200 candidates each; they reproduce the store's numbers "
        "in results/retrieval.md.",
        f"- timings (s, this run only; cached phases show none): {json.dumps(timings) if timings else '-'}",
        "",
        "| run | nDCG@10 test | Recall@10 test | Recall@100 test | delta vs hybrid | gate (held-out train queries): delta [95 % CI] | deployable |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, m, g in rows:
        gtxt = f"{g.delta:+.4f} [{g.ci_low:+.4f}, {g.ci_high:+.4f}]" if g else "-"
        dep = ("**yes**" if g.deployable else "no") if g else "-"
        label = name + (f" ({notes[name]})" if name in notes else "")
        lines.append(
            f"| {label} | {m['ndcg@10']:.4f} | {m['recall@10']:.4f} | {m['recall@100']:.4f} | "
            f"{m['ndcg@10'] - hyb:+.4f} | {gtxt} | {dep} |"
        )
    replace_section(Path(args.out), "scifact", "\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
