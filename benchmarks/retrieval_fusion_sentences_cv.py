"""SciFact: do sentence features lift the learned fusion? 5-fold cross-validation on TRAIN queries only.

    nice -n 10 .venv/bin/python benchmarks/retrieval_fusion_sentences_cv.py [--data DIR] [--home DIR]

Exact in-memory rankings over whole documents (as `retrieval_fusion_cv.py`: MiniLM dense, the store's BM25, RRF
k=60), the seed-0 split of the train qrels; cross-validated over fit + fuse (647 queries), never reading the test
queries. The split's 162 gate queries are scored once, after the CV, by both feature sets fitted on all 647. Each
candidate's sentences are split and embedded by the product's own code (`ragcli.retrieval.sentence_vectors`, the
packaged embedder on its default back-end), and the fusion reads `candidate_features(..., sentences=...)` as
`ragcli train fusion --sentences` does. Rows: the shipped features, each sentence feature alone (with its gap to
the query's best), and both. Writes the `fusion-sentences-cv` section of results/retrieval_trained.md.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from trained_common import (  # noqa: E402
    base_encode,
    bench_parser,
    cache_path,
    commit,
    enter_home,
    loadavg,
    machine,
    replace_section,
    scifact_split,
)


def main() -> None:
    ap = bench_parser(__doc__)
    ap.add_argument("--folds", type=int, default=5)
    args = ap.parse_args()
    home = enter_home(args)
    import numpy as np

    from ragcli.config import load_config
    from ragcli.ingest.build import build_embedder
    from ragcli.retrieval.bm25_sparse_encoder import Bm25SparseEncoder
    from ragcli.retrieval.fusion import FEATURES, SENTENCE_FEATURES, candidate_features
    from ragcli.retrieval.sentence_vectors import SentenceVectors
    from ragcli.train.deployment_gate import paired_bootstrap, per_query_ndcg
    from ragcli.train.exact_ranking import Bm25Index, dense_rank, hybrid_rank, rerank_head
    from ragcli.train.fusion_training import fit_logistic

    t0, load0 = time.time(), loadavg()
    corpus, qtext, train, _test, fit_q, fuse_q, gate_q = scifact_split(Path(args.data))
    pool = fit_q + fuse_q
    asked = pool + gate_q  # the gate's queries are ranked and scored only after the choice, below
    doc_ids = list(corpus)
    texts = [corpus[d].full_text for d in doc_ids]
    bm = Bm25Index(doc_ids, texts, Bm25SparseEncoder())
    base = base_encode(cache_path(home, "base-corpus"), texts)
    qv = base_encode(cache_path(home, "base-pool-gate-queries"), [qtext[q] for q in asked])["vectors"]
    dense = dict(zip(asked, dense_rank(qv, base["vectors"], doc_ids, 100), strict=True))
    sparse = dict(zip(asked, bm.rank([qtext[q] for q in asked], 100), strict=True))
    hyb = dict(zip(asked, hybrid_rank([dense[q] for q in asked], [sparse[q] for q in asked]), strict=True))
    qvec = dict(zip(asked, qv, strict=True))
    text_of = dict(zip(doc_ids, texts, strict=True))
    embedder = build_embedder(load_config("local").embedder, home=home)
    vectors = SentenceVectors(embedder, cache_path(home, "sentence-vectors", ".sqlite"), memory=len(doc_ids))
    heads = {q: [d for d, _ in hyb[q][:20]] for q in asked}
    needed = sorted({d for h in heads.values() for d in h})
    t_embed = time.perf_counter()
    for start in range(0, len(needed), 256):
        vectors.matrices([text_of[d] for d in needed[start : start + 256]])
    embed_s = time.perf_counter() - t_embed
    print(
        f"{len(needed)} candidate documents, {vectors.embedded} sentences embedded now in {embed_s:.0f} s",
        flush=True,
    )

    n_base = len(FEATURES)
    rows = {
        q: candidate_features(
            dense[q],
            sparse[q],
            heads[q],
            rrf_k=60,
            prefetch=100,
            sentences=vectors.scores(qvec[q], [text_of[d] for d in heads[q]]),
        )
        for q in asked
    }
    names = [*FEATURES, *SENTENCE_FEATURES]
    variants = {
        "shipped features (9)": list(range(n_base)),
        "+ sentence_max, its gap": [
            *range(n_base),
            names.index("sentence_max"),
            names.index("sentence_max_gap"),
        ],
        "+ sentence_first, its gap": [
            *range(n_base),
            names.index("sentence_first"),
            names.index("sentence_first_gap"),
        ],
        "+ all four sentence features (13, `--sentences`)": list(range(len(names))),
    }

    def cv(cols: list[int]) -> tuple[float, float]:
        qs = list(pool)
        random.Random(1).shuffle(qs)
        deltas: list[float] = []
        for k in range(args.folds):
            held = qs[k :: args.folds]
            rest = [q for q in qs if q not in set(held)]
            x = np.vstack([rows[q][:, cols] for q in rest])
            y = np.asarray([1.0 if train[q].get(d, 0) > 0 else 0.0 for q in rest for d in heads[q]])
            mu, sd, w, b = fit_logistic(x, y, l2=1.0)
            run: dict[str, list[str]] = {}
            for q in held:
                s = ((rows[q][:, cols] - mu) / sd) @ w + b
                run[q] = [d for d, _ in rerank_head(hyb[q], dict(zip(heads[q], s.tolist(), strict=True)), 20)]
            sub = {q: train[q] for q in held}
            before = per_query_ndcg({q: [d for d, _ in hyb[q]] for q in held}, sub)
            after = per_query_ndcg(run, sub)
            deltas += [a - b for a, b in zip(after, before, strict=True)]
        arr = np.asarray(deltas)
        return float(arr.mean()), float(arr.std(ddof=1) / np.sqrt(len(arr)))

    lines = [
        "## Sentence features for the fusion: 5-fold cross-validation on SciFact TRAIN queries, then the gate split",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(t0))}; commit `{commit()}`; machine: {machine()}",
        f"- load average at start / end: {load0} / (see below)",
        "- command: `nice -n 10 .venv/bin/python benchmarks/retrieval_fusion_sentences_cv.py`",
        f"- {len(pool)} fit + fuse queries, RRF's top 20 re-ordered, logistic regression (L2 1.0); sentences of "
        f"{len(needed)} candidate documents (fit, fuse and gate queries) embedded by the packaged embedder "
        f"({vectors.embedded} sentences embedded in this run, {embed_s:.0f} s; the rest were kept in the home's "
        "file from an earlier run)",
        "",
        "| features | CV delta nDCG@10 vs hybrid (RRF) | standard error |",
        "| --- | --- | --- |",
    ]
    for label, cols in variants.items():
        mean, se = cv(cols)
        print(f"{label:50s} {mean:+.4f} (se {se:.4f})", flush=True)
        lines.append(f"| {label} | {mean:+.4f} | {se:.4f} |")
    lines += [
        "",
        f"Then, once, each fitted on all {len(pool)} queries and scored on the split's {len(gate_q)} gate queries "
        "(never read above), paired bootstrap against RRF as `ragcli train` gates:",
        "",
    ]
    for label in ("shipped features (9)", "+ all four sentence features (13, `--sentences`)"):
        cols = variants[label]
        x = np.vstack([rows[q][:, cols] for q in pool])
        y = np.asarray([1.0 if train[q].get(d, 0) > 0 else 0.0 for q in pool for d in heads[q]])
        mu, sd, w, b = fit_logistic(x, y, l2=1.0)
        run = {
            q: [
                d
                for d, _ in rerank_head(
                    hyb[q],
                    dict(zip(heads[q], (((rows[q][:, cols] - mu) / sd) @ w + b).tolist(), strict=True)),
                    20,
                )
            ]
            for q in gate_q
        }
        sub = {q: train[q] for q in gate_q}
        verdict = paired_bootstrap(
            per_query_ndcg({q: [d for d, _ in hyb[q]] for q in gate_q}, sub),
            per_query_ndcg(run, sub),
            baseline_name="hybrid (RRF)",
            candidate_name=label,
        )
        print(verdict.summary(), flush=True)
        lines.append(f"- {verdict.summary()}")
    lines[3] = f"- load average at start / end: {load0} / {loadavg()}"
    vectors.close()
    replace_section(Path(args.out), "fusion-sentences-cv", "\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
