"""SciFact: which learned fusion of hybrid's candidates to ship, chosen by cross-validation on TRAIN queries only.

    nice -n 10 .venv/bin/python benchmarks/retrieval_fusion_cv.py [--data DIR] [--home DIR]

Needs the caches `retrieval_trained.py` leaves under `<home>/bench-cache` (base vectors and token vectors, the
cross-encoder's scores, the fine-tuned embedder's corpus vectors): run that first. Uses the same seed-0 split of
the train qrels (fit 60 % / fuse 20 % / gate 20 %) and never reads the gate or the test queries: candidates that
need no trained model are cross-validated (5 folds) over fit + fuse (647 queries); those that read a model
trained on fit (cross-encoder, fine-tuned embedder) over fuse only (162). Reports the mean nDCG@10 change over
hybrid (RRF k=60) on the held-out folds. Writes the `fusion-cv` section of results/retrieval_trained.md.
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
    machine,
    replace_section,
    scifact_split,
)

BASE = ["dense_score", "bm25_score", "dense_rrf", "bm25_rrf", "fused_rank_inv"]
SCORES = ("dense_score", "bm25_score", "late", "cross", "finetuned")


def main() -> None:
    ap = bench_parser(__doc__)
    ap.add_argument("--folds", type=int, default=5)
    args = ap.parse_args()
    home = enter_home(args)
    import numpy as np

    from ragcli.ingest.sentence_transformer_embedder import SentenceTransformerEmbedder
    from ragcli.retrieval.bm25_sparse_encoder import Bm25SparseEncoder
    from ragcli.train.deployment_gate import per_query_ndcg
    from ragcli.train.exact_ranking import Bm25Index, dense_rank, hybrid_rank, rerank_head
    from ragcli.train.fusion_training import fit_logistic

    t0, load0 = time.time(), loadavg()
    corpus, qtext, train, test, fit_q, fuse_q, gate_q = scifact_split(Path(args.data))
    eval_q = sorted(set(test) | set(fuse_q) | set(gate_q))
    all_q = sorted(set(eval_q) | set(fit_q))  # the row order of the cached query encodings
    doc_ids = list(corpus)
    texts = [corpus[d].full_text for d in doc_ids]
    bm = Bm25Index(doc_ids, texts, Bm25SparseEncoder())
    base = base_encode(cache_path(home, "base-corpus"), texts, tokens=True)
    qbase = base_encode(cache_path(home, "base-queries"), [qtext[q] for q in all_q], tokens=True)
    pool = fit_q + fuse_q
    qrow = {q: i for i, q in enumerate(all_q)}
    rows = [qrow[q] for q in pool]
    dense = dict(zip(pool, dense_rank(qbase["vectors"][rows], base["vectors"], doc_ids, 200), strict=True))
    sparse = dict(zip(pool, bm.rank([qtext[q] for q in pool], 200), strict=True))
    hyb = dict(zip(pool, hybrid_rank([dense[q] for q in pool], [sparse[q] for q in pool]), strict=True))
    ce = json.loads(cache_path(home, "scifact-ce-h2-r2-e1-lr5e-05-L128-scores", ".json").read_text())
    fvec = np.load(cache_path(home, "scifact-mnrl-e1-lr2e-05-b32-corpus"))
    fq = SentenceTransformerEmbedder(str(home / "embedders" / "scifact-mnrl-e1-lr2e-05-b32")).embed(
        [qtext[q] for q in pool]
    )
    frow = {q: i for i, q in enumerate(pool)}
    drow = {d: i for i, d in enumerate(doc_ids)}

    def raw(q: str, depth: int) -> tuple[list[str], dict[str, Any]]:
        cands = [d for d, _ in hyb[q][:depth]]
        dr = {d: i for i, (d, _) in enumerate(dense[q])}
        sr = {d: i for i, (d, _) in enumerate(sparse[q])}
        qv = qbase["vectors"][qrow[q]]
        bm_all = bm.scores(qtext[q])
        rr = [drow[d] for d in cands]
        li = late_interaction_scores(qbase, qrow[q], base, rr, cands)
        cols = {
            "dense_score": base["vectors"][rr] @ qv,
            "bm25_score": bm_all[rr].astype(np.float64),
            "dense_rrf": np.array([1 / (61 + dr.get(d, 200)) for d in cands]),
            "bm25_rrf": np.array([1 / (61 + sr.get(d, 200)) for d in cands]),
            "fused_rank_inv": 1 / np.arange(1, len(cands) + 1),
            "late": np.array([li[d] for d in cands]),
            "cross": np.array([ce.get(q, {}).get(d, 0.0) for d in cands]),
            "finetuned": fvec[rr] @ fq.vectors[frow[q]],
            # cheap extras a query has at hand: the document's length, and each score scaled by the query's
            "doclen": np.log1p(np.array([len(texts[drow[d]].split()) for d in cands], dtype=np.float64)),
            "qlen_dense": (base["vectors"][rr] @ qv) * np.log1p(len(qtext[q].split())),
            "qlen_bm25": bm_all[rr].astype(np.float64) * np.log1p(len(qtext[q].split())),
        }
        return cands, cols

    cache: dict[tuple[str, int], Any] = {}

    def mat(q: str, names: list[str], norm: bool, depth: int) -> tuple[list[str], Any]:
        if (q, depth) not in cache:
            cache[(q, depth)] = raw(q, depth)
        cands, cols = cache[(q, depth)]
        xs = [cols[k] for k in names]
        if norm:
            for k in names:
                if k in SCORES:
                    c = cols[k]
                    xs += [c - c.max(), (c - c.mean()) / (c.std() + 1e-6)]
        return cands, np.stack(xs, axis=1)

    def fit_listwise(qs: list[str], names: list[str], norm: bool, depth: int, l2: float) -> Any:
        data = []
        for q in qs:
            c, x = mat(q, names, norm, depth)
            y = np.array([1.0 if train[q].get(d, 0) > 0 else 0.0 for d in c])
            if y.sum() > 0:
                data.append((x, y / y.sum()))
        allx = np.vstack([x for x, _ in data])
        mu, sd = allx.mean(0), allx.std(0) + 1e-9
        w = np.zeros(allx.shape[1])
        for _ in range(300):  # softmax cross-entropy over each query's candidates, plain gradient descent
            g = l2 * w / len(data)
            for x, y in data:
                s = ((x - mu) / sd) @ w
                p = np.exp(s - s.max())
                g += ((x - mu) / sd).T @ (p / p.sum() - y) / len(data)
            w -= 0.5 * g
        return lambda x: ((x - mu) / sd) @ w

    def fit_pointwise(qs: list[str], names: list[str], norm: bool, depth: int, l2: float) -> Any:
        xs, ys = [], []
        for q in qs:
            c, x = mat(q, names, norm, depth)
            xs.append(x)
            ys += [1.0 if train[q].get(d, 0) > 0 else 0.0 for d in c]
        mu, sd, w, b = fit_logistic(np.vstack(xs), np.asarray(ys), l2=l2)
        return lambda x: ((x - mu) / sd) @ w + b

    def cv(qs: list[str], names: list[str], norm: bool, kind: str, depth: int, l2: float) -> float:
        qs = list(qs)
        random.Random(1).shuffle(qs)
        total = 0.0
        for k in range(args.folds):
            held = qs[k :: args.folds]
            rest = [q for q in qs if q not in set(held)]
            f = (fit_pointwise if kind == "pointwise" else fit_listwise)(rest, names, norm, depth, l2)
            run = {}
            for q in held:
                c, x = mat(q, names, norm, depth)
                run[q] = [d for d, _ in rerank_head(hyb[q], dict(zip(c, f(x).tolist(), strict=True)), depth)]
            sub = {q: train[q] for q in held}
            a = per_query_ndcg({q: [d for d, _ in hyb[q]] for q in held}, sub)
            total += float(np.sum(np.array(per_query_ndcg(run, sub)) - np.array(a)))
        return total / len(qs)

    grid: list[tuple[str, list[str], bool, str, int, float]] = []
    for names in (BASE, [*BASE, "late"]):
        for norm in (False, True):
            for kind in ("pointwise", "listwise"):
                grid.append(("fit + fuse", names, norm, kind, 20, 1.0))
    grid += [("fit + fuse", BASE, True, "pointwise", d, 1.0) for d in (10, 40)]
    grid += [
        ("fit + fuse", names, True, "pointwise", 20, 1.0)
        for names in ([*BASE, "doclen"], [*BASE, "qlen_dense", "qlen_bm25"])
    ]
    for names in ([*BASE, "late", "cross"], [*BASE, "finetuned"], [*BASE, "late", "cross", "finetuned"]):
        for kind in ("pointwise", "listwise"):
            grid.append(("fuse", names, True, kind, 20, 1.0))
    lines = [
        "## Which fusion ships: 5-fold cross-validation on SciFact TRAIN queries (never gate or test)",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(t0))}; commit `{commit()}`; machine: {machine()}",
        f"- load average at start / end: {load0} / (see below)",
        "- command: `nice -n 10 .venv/bin/python benchmarks/retrieval_fusion_cv.py`",
        "- per query: hybrid's top `depth` re-ordered; `+ per-query` adds each score's gap to the query's best "
        "candidate and its z-score among the candidates; L2 1.0 on standardised features",
        "",
        "| queries (folds over) | features | per-query | loss | depth | CV delta nDCG@10 vs hybrid |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for pool_name, names, norm, kind, depth, l2 in grid:
        qs = pool if pool_name == "fit + fuse" else fuse_q
        d = cv(qs, names, norm, kind, depth, l2)
        print(
            f"{pool_name:10s} {'+'.join(names):60s} norm={int(norm)} {kind:9s} depth {depth}: {d:+.4f}",
            flush=True,
        )
        lines.append(
            f"| {pool_name} ({len(qs)}) | {', '.join(names)} | {'yes' if norm else 'no'} | {kind} | {depth} | {d:+.4f} |"
        )
    lines[3] = f"- load average at start / end: {load0} / {loadavg()}"
    replace_section(Path(args.out), "fusion-cv", "\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
