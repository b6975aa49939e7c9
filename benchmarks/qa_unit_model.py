"""The compressor's unit model (`ragcli.generation.unit_model`) end to end at a quarter of LlamaIndex's tokens;
`--write DIR` trains the card that ships.

    .venv/bin/python benchmarks/qa_unit_model.py [--data ../shared/data] [--caps 132] [--out F.md] [--write DIR]

Setting of `qa_compress_pairs.py --second-hop 4`: the real query pipeline (`lean`, hybrid retrieval, top 12 plus
4 from `retrieval.second_hop`) retrieves once per question; the 16 hits are packed whole at 2,048 tokens and
compressed to each cap. Scored like `qa_baselines.py`: answer in context (question removed), cl100k tokens of the
whole prompt; HotpotQA's 218 span-answer questions and NQ's first 300.

Cross-validation: HotpotQA's span questions in the two folds of `qa_compress_pairs.fold_compressors` (so the
block pair prior is out of fold too), NQ's first 300 in two folds (seed 0). A question of fold f is compressed
with a unit model trained without fold f: its trees on the units of the other fold of both sets plus those of NQ's
questions after the first 300 (never scored here), label = the unit holds an answer; its gate on the other fold's
HotpotQA questions (multi-hop, the yes/no ones included) against NQ's other fold and its questions after the first
300 (single-hop). `--nq-limit 1293` scores all of NQ in two folds (each fold's trees and gate see the other fold's
646 NQ questions only); `--hp-seed H` reshuffles HotpotQA's two folds and its pair models' with them (every
run before 2026-12-05 used split 0). `--folds K` splits both sets into K folds instead, each model trained on the
other K - 1: closer to the card that ships, which trains on all of them (two folds train on half). `--write DIR`
fits the same on all of them (HotpotQA in-sample, like the pair model; NQ's first 300 never seen).

`--whole-source N` (default 256; 0 leaves it out) adds the unit model with `compression.whole_source_tokens: N`:
a question the out-of-fold gate is sure is single-hop gets its best source whole (<= N tokens) instead, with the
closest source's best clauses when that is another one (the blocks' cosine with the question from the stored
vectors, as the query path computes it; `--no-similarity` leaves it out). `--per-question F` appends one JSON line
per scored question: clauses behind the gate, and each path forced past it (one source whole, the trees, the
weights), with the gate's probability, so that any cut or recipe of the gate can be replayed afterwards.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from qa_adaptive_calibrate import retrieve_all, sweep  # noqa: E402
from qa_baselines import harness  # noqa: E402
from qa_compress_pairs import PerQuestion, compress_grid, fold_compressors, fold_slices  # noqa: E402
from trained_common import emit  # noqa: E402

from ragcli.eval.normalize import answer_in_normalized, normalize_answer  # noqa: E402
from ragcli.generation.sentence_compressor import SentenceCompressor  # noqa: E402
from ragcli.generation.token_budget_packer import TokenBudgetPacker  # noqa: E402
from ragcli.generation.unit_model import UnitModel, gate_words, plain_question  # noqa: E402
from ragcli.train.unit_model_training import fit_trees  # noqa: E402

SPEC = "hybrid=lean,ingest.sparse=true,retrieval.mode=hybrid,retrieval.top_k=12,retrieval.second_hop=4"
TOP = 16
GATE_AT = 0.3
"""Multi-hop at a gate probability >= 0.3 (0.5 and 0.15 measured too, on these questions: qa.md 2026-12-04)."""


def fit_gate(x: np.ndarray, y: np.ndarray) -> tuple[list[float], float, list[float], list[float]]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x)
    lr = LogisticRegression(C=1.0, max_iter=3000, class_weight="balanced").fit(scaler.transform(x), y)
    return (
        [float(v) for v in lr.coef_[0]],
        float(lr.intercept_[0]),
        list(map(float, scaler.mean_)),
        list(map(float, scaler.scale_)),
    )


def build(
    name: str,
    units: tuple[np.ndarray, np.ndarray],
    gate: tuple[np.ndarray, np.ndarray],
    embedder: str,
    card: dict,
) -> UnitModel:
    baseline, trees = fit_trees(*units)
    gx, gy = gate
    gw, gb, gm, gs = fit_gate(gx, gy)
    lw, lb, lm, ls = fit_gate(gx[:, -len(gate_words("x")) :], gy)
    return UnitModel(name, embedder, gw, gb, gm, gs, lw, lb, lm, ls, GATE_AT, baseline, trees, card=card)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--caps", nargs="+", type=int, default=[132])
    ap.add_argument("--nq-limit", type=int, default=300, help="NQ's scored questions; the rest train only")
    ap.add_argument("--nq-seed", type=int, default=0, help="the shuffle of NQ's two folds")
    ap.add_argument(
        "--hp-seed",
        type=int,
        default=0,
        help="the shuffle of HotpotQA's two folds (the pair models' folds too)",
    )
    ap.add_argument(
        "--folds",
        type=int,
        default=2,
        help="cross-validation folds of both sets (each model trains on the others; the card trains on all)",
    )
    ap.add_argument("--write", type=Path, help="also fit on all questions and save the card in this folder")
    ap.add_argument("--out", type=Path)
    ap.add_argument(
        "--whole-source", type=int, default=256, help="also the unit model with whole_source_tokens (0: not)"
    )
    ap.add_argument(
        "--no-similarity",
        action="store_true",
        help="leave out the blocks' similarity to the question (the whole source alone, as before 2026-12-04 night)",
    )
    ap.add_argument(
        "--per-question",
        type=Path,
        help="append, per scored question, clauses vs one source whole (forced past the gate) and their features",
    )
    args = ap.parse_args()
    count, cache = harness()
    data = Path(args.data)
    ns = argparse.Namespace(data=args.data, limit=None, nq_limit=None, split="all")
    runs: dict[str, dict[str, Any]] = {}
    fold: dict[str, dict[str, int]] = {}  # scored question -> its fold
    rows: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}  # set -> question -> (X, y)
    extra: list[tuple[np.ndarray, np.ndarray]] = []  # NQ after the first --nq-limit: training only
    pair_of: dict[str, Any] = {}
    for set_name in ("hotpotqa", "nq"):
        run = retrieve_all(set_name, SPEC, ns, cache)
        llm_count = run["stages"].llm.count_tokens
        if set_name == "hotpotqa":
            # the pair model that never saw the question, and the folds it was trained in
            per = fold_compressors(data, llm_count, seed=args.hp_seed, k=args.folds)
            pair_of = {q: c._pair_model for q, c in per.by_question.items()}
            fold[set_name] = per.folds
        else:
            order = [it.question.strip() for it in run["items"][: args.nq_limit]]
            random.Random(args.nq_seed).shuffle(order)
            fold[set_name] = {
                q: f for f, sl in enumerate(fold_slices(len(order), args.folds)) for q in order[sl]
            }
        packer = TokenBudgetPacker(llm_count, select_sentences=False, order=run["cfg"].packing.order)
        rows[set_name] = {}
        for item, hits in zip(run["items"], run["hits"], strict=True):
            q = item.question.strip()
            scored = q in fold[set_name]
            if not item.answers or not (scored or set_name == "nq"):
                continue
            ctx = packer.pack(item.question, hits[:TOP], 2048)
            by_id = {h.chunk.id: h.score for h in hits}
            comp = SentenceCompressor(llm_count, pair_model=pair_of.get(q))
            x, plain = comp.unit_rows(
                item.question, ctx.text, [by_id.get(c.chunk_id, 0.0) for c in ctx.citations]
            )
            y = np.array(
                [answer_in_normalized(item.answers, normalize_answer(p)) for p in plain], dtype=float
            )
            if scored:
                rows[set_name][q] = (x, y)
            else:
                extra.append((x, y))
        runs[set_name] = run
        print(f"{set_name}: {len(rows[set_name])} scored questions featurized", flush=True)
    # the gate: question vectors of the lower-cased question without punctuation, and its word counts
    st = runs["nq"]["stages"]
    hp_questions = [it.question.strip() for it in runs["hotpotqa"]["items"]]
    nq_questions = [it.question.strip() for it in runs["nq"]["items"]]
    nq_train = nq_questions[args.nq_limit :]
    everything = hp_questions + nq_questions
    vectors = st.embedder.embed([plain_question(q) for q in everything]).vectors
    gate_x = {q: np.concatenate([v, gate_words(q)]) for q, v in zip(everything, vectors, strict=True)}
    embedder = st.embedder.model_name

    def model_without(f: int | None) -> UnitModel:
        xs, ys = [], []
        for s in rows:
            for q, (x, y) in rows[s].items():
                # the card that ships (f None) never sees NQ's scored questions: `ragcli eval qa --limit 300` asks them
                if (fold[s][q] != f) if f is not None else s == "hotpotqa":
                    xs.append(x)
                    ys.append(y)
        for x, y in extra:
            xs.append(x)
            ys.append(y)
        multi = [q for q in hp_questions if fold["hotpotqa"].get(q) != f or f is None]
        # single-hop: NQ's training-only questions, and in CV the other fold of its scored ones
        single = nq_train + ([q for q, g in fold["nq"].items() if g != f] if f is not None else [])
        gx = np.asarray([gate_x[q] for q in multi + single])
        gy = np.array([1] * len(multi) + [0] * len(single))
        card = {
            "trained_on": (
                f"{sum(len(x) for x in xs)} units of {len(xs)} questions (HotpotQA span-answer and NQ after the first "
                f"{args.nq_limit}); gate: {len(multi)} HotpotQA questions (multi-hop) against {len(single)} NQ"
            ),
            "trained": time.strftime("%Y-%m-%d"),
            "script": "benchmarks/qa_unit_model.py --write",
        }
        return build("qa-units", (np.vstack(xs), np.concatenate(ys)), (gx, gy), embedder, card)

    models = {f: model_without(f) for f in range(args.folds)}
    embed = st.embedder.embed

    def question_embed(texts: Any) -> Any:
        return embed(texts).vectors

    lines = [
        "| set | compressor | cap | answer in context | prompt tokens | called multi-hop |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    gate_lines = ["", "Out-of-fold gate (multi-hop probability) per scored question:"]
    for set_name, run in runs.items():
        llm_count = run["stages"].llm.count_tokens
        shipped, learned, whole = {}, {}, {}
        probs: list[float] = []
        for q, f in fold[set_name].items():
            pm = pair_of.get(q)
            shipped[q] = SentenceCompressor(llm_count, pair_model=pm)
            learned[q] = SentenceCompressor(
                llm_count, pair_model=pm, unit_model=models[f], question_embed=question_embed
            )
            whole[q] = SentenceCompressor(
                llm_count,
                pair_model=pm,
                unit_model=models[f],
                question_embed=question_embed,
                whole_source_tokens=args.whole_source,
            )
            probs.append(models[f].multi_hop(q, gate_x[q][: models[f].dim]))
        below = ", ".join(f"{100 * np.mean(np.array(probs) < t):.1f} % < {t}" for t in (0.05, 0.1, 0.3))
        gate_lines.append(f"- {set_name}: gate probability {below}")
        scored = dict(run)
        # HotpotQA: all 261 (the yes/no ones count for tokens only, compressed as shipped); NQ: the first 300
        keep = list(range(len(run["items"]) if set_name == "hotpotqa" else args.nq_limit))
        scored["items"] = [run["items"][i] for i in keep]
        scored["hits"] = [run["hits"][i] for i in keep]
        variants = [
            ("weights (as before)", PerQuestion(shipped, SentenceCompressor(llm_count))),
            ("unit model from the other fold", PerQuestion(learned, SentenceCompressor(llm_count))),
        ]
        if args.whole_source:
            variants.append(
                (
                    f"unit model, one source whole <= {args.whole_source}",
                    PerQuestion(whole, SentenceCompressor(llm_count)),
                )
            )
        if args.per_question:
            dump_per_question(
                args.per_question, set_name, scored, fold[set_name], learned, whole, probs, count
            )
        grid = compress_grid(variants, args.caps, top_k=TOP, budget=2048)
        for g in grid:
            g["similarity"] = not args.no_similarity
        for r in sweep(scored, grid, count):
            share = (
                f"{100 * np.mean(np.array(probs) >= GATE_AT):.1f} %" if r["name"].startswith("unit") else ""
            )
            lines.append(
                f"| {set_name} | {r['name']} | {r['cap']} | {100 * r['aic']:.1f} % | {r['tokens']:.0f} | {share} |"
            )
            print(lines[-1], flush=True)
    lines += gate_lines
    if args.write:
        path = model_without(None).save(args.write)
        lines += ["", f"Card written: {path} ({path.stat().st_size:,} bytes)."]
        print(lines[-1])
    emit(lines, args.out)


def dump_per_question(
    path: Path,
    set_name: str,
    run: dict[str, Any],
    folds: dict[str, int],
    learned: dict[str, SentenceCompressor],
    whole: dict[str, SentenceCompressor],
    probs: list[float],
    count: Any,
) -> None:
    """One JSON line per scored question: answer in context and prompt tokens with clauses (the unit model behind
    its gate) and with each path forced past the gate (`whole`: one source whole plus the closest source's best
    units; `trees`; `weights`), the gate's probability and what the compressor saw (the best units' scores per
    block, the blocks' similarity to the question)."""
    import copy
    import json

    from ragcli.eval.qa_eval import score_prompt
    from ragcli.generation.compression_types import CompressionTarget
    from ragcli.generation.prompts import build_messages
    from ragcli.generation.sentence_compressor import WHOLE_SOURCE_GATE
    from ragcli.pipelines.compress_step import block_similarity

    st, ds, cfg = run["stages"], run["ds"], run["cfg"]
    packer = TokenBudgetPacker(st.llm.count_tokens, select_sentences=False, order=cfg.packing.order)
    gate = dict(zip(folds, probs, strict=True))
    with path.open("a", encoding="utf-8") as fh:
        for item, hits in zip(run["items"], run["hits"], strict=True):
            q = item.question.strip()
            if q not in folds:
                continue
            ctx = packer.pack(item.question, hits[:TOP], 2048)
            scores = {h.chunk.id: h.score for h in hits}
            bs = [scores.get(c.chunk_id, 0.0) for c in ctx.citations]
            qv = st.embedder.embed_query(item.question).vectors[0].tolist()
            sim = block_similarity(st, qv, [c.chunk_id for c in ctx.citations])
            # each path forced past the gate (the grid's own compressors keep theirs): one source whole, the
            # trees (a probability between WHOLE_SOURCE_GATE and the gate's 0.3), the weights
            forced = {}
            for name, p in (("whole", 0.0), ("trees", WHOLE_SOURCE_GATE), ("weights", 1.0)):
                forced[name] = copy.copy(whole[q])
                forced[name]._multi_hop = lambda _q, p=p: p  # type: ignore[method-assign]
            row: dict[str, Any] = {"set": set_name, "question": q, "fold": folds[q], "gate": gate[q]}
            for name, comp in (("clauses", learned[q]), *forced.items()):
                done = comp.compress(
                    item.question,
                    ctx.text,
                    CompressionTarget(tokens=132),
                    block_scores=bs,
                    block_similarity=sim,
                )
                messages = build_messages(cfg.prompt.system, done.text, item.question, [])
                a, _, _ = score_prompt(item, "\n".join(m.content for m in messages), ds.paragraphs)
                row[name] = a
                row[f"{name}_tokens"] = sum(count(m.content) for m in messages)
                if name == "whole":
                    row["sent_whole"] = done.whole_source
            row["similarity"] = [v if v is not None else -1.0 for v in (sim or [])]
            row["block_best"] = forced_block_best(forced["whole"], item.question, ctx.text, bs)
            fh.write(json.dumps(row) + "\n")


def forced_block_best(comp: SentenceCompressor, question: str, text: str, bs: list[float]) -> list[float]:
    """The trees' best unit score per block, as the compressor ranks them for a single-hop question."""
    from ragcli.generation.protected_spans import find_spans, question_keys

    keys = question_keys(question)
    blocks, units = comp._split(text, find_spans(text, keys))
    comp._score(question, keys, text, blocks, units, bs, trees=True)
    best = [-1e9] * len(blocks)
    for u in units:
        best[u.block] = max(best[u.block], u.score)
    return best


if __name__ == "__main__":
    main()
