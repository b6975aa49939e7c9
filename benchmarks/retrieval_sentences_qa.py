"""HotpotQA: answer-in-context against prompt tokens with hybrid (RRF), the trained score fusion, and the fusion
with sentence features (`ragcli train fusion --sentences`), at equal context budgets.

    nice -n 10 .venv/bin/python benchmarks/retrieval_sentences_qa.py [--data DIR] [--home DIR] [--report 100]

The same split as `retrieval_trained_qa.py`: the 261 questions' paragraphs pooled into one corpus, the first
`--report` questions measured, the others fit both fusions (question -> its supporting paragraphs) minus a
held-out fifth that gates them (nDCG@10 of the supporting paragraphs, paired bootstrap against RRF). Sentence
features read each paragraph as its title line and its text (a chunk under a heading), embedded once by the
packaged embedder through `ragcli.retrieval.sentence_vectors`. Packing: whole paragraphs (`title: text`) in ranked
order until the budget (cl100k tokens) is full; a question counts when a gold answer string is in the normalised
context (yes/no questions left out). Writes the `hotpotqa-sentences` section of results/retrieval_trained.md.
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
    args = ap.parse_args()
    home = enter_home(args)

    from ragcli.cost.tokens import counter_for
    from ragcli.eval.normalize import is_yes_no
    from ragcli.retrieval.sentence_vectors import SentenceVectors
    from ragcli.train.exact_ranking import dense_rank, rrf
    from ragcli.train.fusion_training import fit_fusion, gate_fusion, training_rows

    t_start, load0 = time.time(), loadavg()
    pool = hotpot_pool(Path(args.data), home, args.report)
    ds, pids, texts, bm, base, dvec = pool.ds, pool.pids, pool.texts, pool.bm, pool.base, pool.dvec
    report_q, fit_q, gate_q = pool.report_q, pool.fit_q, pool.gate_q
    chunk_text = {p: f"{ds.paragraphs[p].title}\n{ds.paragraphs[p].text}" for p in pids}
    count = counter_for("gpt-4o-mini")
    vectors = SentenceVectors(base, cache_path(home, "hotpot-sentence-vectors", ".sqlite"), memory=len(pids))
    t0 = time.perf_counter()
    for start in range(0, len(pids), 256):
        vectors.matrices([chunk_text[p] for p in pids[start : start + 256]])
    embed_s = time.perf_counter() - t0

    def sides(items: list) -> tuple[list, list, list]:
        qv = base.embed([q.question for q in items]).vectors
        dense = dense_rank(qv, dvec, pids, 100)
        sparse = bm.rank([q.question for q in items], 100)
        scorers = [
            (lambda ids, v=v: vectors.scores(v, [chunk_text[p] for p in ids])) for v in qv
        ]  # one per question
        return dense, sparse, scorers

    labels = [{s: 1 for s in q.supporting} for q in fit_q]
    fd, fs, fsc = sides(fit_q)
    x, y = training_rows(fd, fs, labels, depth=20, rrf_k=60, prefetch=100)
    plain = fit_fusion("hotpot-plain", x, y)
    xs, ys = training_rows(fd, fs, labels, depth=20, rrf_k=60, prefetch=100, sentence_scores=fsc)
    with_sentences = fit_fusion("hotpot-sentences", xs, ys)
    gd, gs, gsc = sides(gate_q)
    gold = [{s: 1 for s in q.supporting} for q in gate_q]
    base_rank = [rrf([d, s], k=60, limit=100) for d, s in zip(gd, gs, strict=True)]
    v_plain = gate_fusion(plain, gd, gs, gold, base_rank)
    v_sent = gate_fusion(with_sentences, gd, gs, gold, base_rank, sentence_scores=gsc)
    print(v_plain.summary(), v_sent.summary(), sep="\n", flush=True)
    rd, rs, rsc = sides(report_q)
    runs = {
        "hybrid (RRF)": [rrf([d, s], k=60, limit=100) for d, s in zip(rd, rs, strict=True)],
        "hybrid + trained fusion": [plain.fuse(d, s, 100) for d, s in zip(rd, rs, strict=True)],
        "hybrid + trained fusion with sentences": [
            with_sentences.fuse(d, s, 100, sc) for d, s, sc in zip(rd, rs, rsc, strict=True)
        ],
    }
    scored = [i for i, q in enumerate(report_q) if q.answers and not is_yes_no(q.answers)]
    lines = [
        "## HotpotQA: answer in context vs prompt tokens, with the fusion's sentence features",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(t_start))}; commit `{commit()}`; machine: {machine()}",
        f"- load average at start / end: {load0} / {loadavg()}",
        f"- command: `nice -n 10 .venv/bin/python benchmarks/retrieval_sentences_qa.py {' '.join(sys.argv[1:])}`",
        f"- {len(pids)} pooled paragraphs ({vectors.embedded} sentences embedded in {embed_s:.0f} s); measured on "
        f"the first {len(report_q)} questions ({len(scored)} with a non-yes/no answer); both fusions fitted on "
        f"{len(fit_q)} other questions, gated on {len(gate_q)} more",
        f"- gate, fusion: {v_plain.summary()}",
        f"- gate, fusion with sentences: {v_sent.summary()}",
    ]
    lines += answer_in_context_rows(runs, report_q, args.budgets, dict(zip(pids, texts, strict=True)), count)
    vectors.close()
    replace_section(Path(args.out), "hotpotqa-sentences", "\n".join(lines))


if __name__ == "__main__":
    main()
