"""HotpotQA: answer-in-context against prompt tokens, hybrid retrieval with the packaged embedder vs with one
fine-tuned (in-batch negatives) on other questions' supporting paragraphs, and vs the trained score fusion, at
equal context budgets.

    nice -n 10 .venv/bin/python benchmarks/retrieval_trained_qa.py [--data DIR] [--home DIR] [--report 100]

The 261 questions' paragraphs are pooled into one corpus (2,5xx paragraphs). The first `--report` questions
are measured; the others train the embedder (question -> each supporting paragraph) minus a held-out fifth
that gates it (nDCG@10 of the supporting paragraphs, paired bootstrap against hybrid with the packaged model).
Packing is the plain one: whole paragraphs (`title: text`) in ranked order until the budget (cl100k tokens) is
full; a question counts when a gold answer string is in the normalised context (yes/no questions left out).
Runs independently of the query pipeline, so it measures the ranking alone. Writes the `hotpotqa` section of
benchmarks/results/retrieval_trained.md.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from trained_common import (  # noqa: E402
    answer_in_context_rows,
    bench_parser,
    cache_path,
    commit,
    enter_home,
    hotpot_pool,
    loadavg,
    machine,
    replace_section,
)


def main() -> None:
    ap = bench_parser(__doc__)
    ap.add_argument("--report", type=int, default=100)
    ap.add_argument("--budgets", type=int, nargs="*", default=[128, 256, 512])
    ap.add_argument("--epochs", type=int, default=1)
    args = ap.parse_args()
    home = enter_home(args)
    import numpy as np

    from ragcli.cost.tokens import counter_for
    from ragcli.eval.normalize import is_yes_no
    from ragcli.ingest.sentence_transformer_embedder import SentenceTransformerEmbedder
    from ragcli.train.cross_encoder_training import Pair
    from ragcli.train.deployment_gate import paired_bootstrap, per_query_ndcg, write_verdict
    from ragcli.train.embedder_training import CARD, train_embedder
    from ragcli.train.exact_ranking import as_run, dense_rank, hybrid_rank

    t_start, load0 = time.time(), loadavg()
    pool = hotpot_pool(Path(args.data), home, args.report)
    ds, pids, texts, bm, base, dvec = pool.ds, pool.pids, pool.texts, pool.bm, pool.base, pool.dvec
    report_q, fit_q, gate_q = pool.report_q, pool.fit_q, pool.gate_q
    count = counter_for("gpt-4o-mini")
    name = f"hotpot-mnrl-e{args.epochs}"
    epath = home / "embedders" / name
    t_train = None
    if not (epath / CARD).is_file():
        pairs = [
            Pair(q.question, texts[pids.index(s)], 1.0)
            for q in fit_q
            for s in q.supporting
            if s in ds.paragraphs
        ]
        t_train = train_embedder(
            pairs, name=name, epochs=args.epochs, home=home, data={"hotpotqa": len(fit_q)}
        ).seconds
    tuned = SentenceTransformerEmbedder(str(epath))
    tp = cache_path(home, f"{name}-corpus")
    tvec = np.load(tp) if tp.is_file() else tuned.embed(texts).vectors
    np.save(tp, tvec)

    def hybrid(items: list, emb: SentenceTransformerEmbedder, vecs: np.ndarray) -> list:
        qv = emb.embed([q.question for q in items]).vectors
        return hybrid_rank(
            dense_rank(qv, vecs, pids, 200), bm.rank([q.question for q in items], 200), limit=100
        )

    # gate: nDCG@10 of the supporting paragraphs on held-out training questions
    gq = {q.id: {s: 1 for s in q.supporting} for q in gate_q}
    gids = [q.id for q in gate_q]
    verdict = paired_bootstrap(
        per_query_ndcg(as_run(gids, hybrid(gate_q, base, dvec)), gq),
        per_query_ndcg(as_run(gids, hybrid(gate_q, tuned, tvec)), gq),
        baseline_name="hybrid",
        candidate_name="hybrid, fine-tuned embedder",
    )
    write_verdict(epath / CARD, verdict)
    print(verdict.summary(), flush=True)
    # the trained score fusion (`ragcli train fusion`) over the packaged model's dense and BM25 rankings:
    # fitted on the embedder's training questions, gated on the same held-out ones
    from ragcli.train.fusion_training import fit_fusion, gate_fusion, training_rows

    def sides(items: list) -> tuple[list, list]:
        qv = base.embed([q.question for q in items]).vectors
        return dense_rank(qv, dvec, pids, 100), bm.rank([q.question for q in items], 100)

    fd, fs = sides(fit_q)
    x, y = training_rows(
        fd, fs, [{s: 1 for s in q.supporting} for q in fit_q], depth=20, rrf_k=60, prefetch=100
    )
    fusion = fit_fusion("hotpot-bench", x, y)
    gd, gs_ = sides(gate_q)
    fverdict = gate_fusion(fusion, gd, gs_, [gq[q] for q in gids], hybrid(gate_q, base, dvec))
    print(fverdict.summary(), flush=True)
    rd, rs = sides(report_q)
    runs = {
        "hybrid, packaged MiniLM": hybrid(report_q, base, dvec),
        f"hybrid, `trained:{name}`": hybrid(report_q, tuned, tvec),
        "hybrid + trained score fusion": [fusion.fuse(d, s_, 100) for d, s_ in zip(rd, rs, strict=True)],
    }
    scored = [i for i, q in enumerate(report_q) if q.answers and not is_yes_no(q.answers)]
    lines = [
        "## HotpotQA: answer in context vs prompt tokens, with and without the trained embedder and fusion",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(t_start))}; commit `{commit()}`; machine: {machine()}",
        f"- load average at start / end: {load0} / {loadavg()}",
        f"- command: `nice -n 10 .venv/bin/python benchmarks/retrieval_trained_qa.py {' '.join(sys.argv[1:])}`",
        f"- {len(pids)} pooled paragraphs; measured on the first {len(report_q)} questions ({len(scored)} with a "
        f"non-yes/no answer); embedder trained on {len(fit_q)} other questions' supporting paragraphs"
        + (f" ({t_train:.0f} s)" if t_train else "")
        + f", gated on {len(gate_q)} more: {verdict.summary()}",
        f"- trained score fusion (`ragcli train fusion`'s model) fitted on the same {len(fit_q)} questions "
        f"({int(y.sum())} supporting of {len(y)} candidates), gated on the same {len(gate_q)}: {fverdict.summary()}",
    ]
    lines += answer_in_context_rows(runs, report_q, args.budgets, dict(zip(pids, texts, strict=True)), count)
    replace_section(Path(args.out), "hotpotqa", "\n".join(lines))


if __name__ == "__main__":
    main()
