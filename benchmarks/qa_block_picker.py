"""Which source to send whole (`compression.whole_source_tokens`) and what to send with it, measured on NQ's
first 300 questions (never trained on): pick rules, LlamaIndex's rule for comparison, and what each policy sends.

    .venv/bin/python benchmarks/qa_block_picker.py [--data ../shared/data] [--out F.md]

Setting of `qa_unit_model.py` (the README's quarter config: 16 hits packed whole, 132-token target). Three tables:
1. Pick rules among the 16 sources, for the questions sent whole: the source of the best unit (shipped), MiniLM
   cosine of the question with the stored chunk vector, the fused first hit, and two pickers trained on block
   features (logistic regression, gradient boosting) on NQ's questions after the first 300, with unit scores
   from trees that never saw the question (two folds over those questions; HotpotQA's span questions in both).
   The first 300 are scored with the packaged unit model, which never saw them.
2. Each question against LlamaIndex's own rule (the dense top-1 over the whole pool, from the same vectors).
3. Policies end to end on the context: answer in context and context tokens (add the prompt's ~26 tokens of
   system prompt and question for the whole prompt).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from qa_adaptive_calibrate import retrieve_all  # noqa: E402
from qa_baselines import harness  # noqa: E402
from trained_common import emit  # noqa: E402

from ragcli.eval.normalize import answer_in_normalized, normalize_answer  # noqa: E402
from ragcli.generation.compression_types import CompressionTarget  # noqa: E402
from ragcli.generation.protected_spans import find_spans, question_keys  # noqa: E402
from ragcli.generation.sentence_compressor import (  # noqa: E402
    _ALTERNATIVES,
    WHOLE_SOURCE_GATE,
    SentenceCompressor,
    _unit_range,
)
from ragcli.generation.sentence_model import _rank_inv  # noqa: E402
from ragcli.generation.sentence_selector import terms  # noqa: E402
from ragcli.generation.token_budget_packer import TokenBudgetPacker  # noqa: E402
from ragcli.generation.unit_model import UnitModel, load_unit_model, plain_question  # noqa: E402
from ragcli.train.unit_model_training import fit_trees  # noqa: E402

SPEC = "hybrid=lean,ingest.sparse=true,retrieval.mode=hybrid,retrieval.top_k=12,retrieval.second_hop=4"
TOP = 16
BLOCK_FEATURES = (
    "unit_max",
    "unit_gap",
    "unit_rank_inv",
    "unit_second",
    "units_in_top5",
    "retrieval",
    "position_inv",
    "cosine",
    "cosine_gap",
    "cosine_rank_inv",
    "tokens",
    "bm25",
)


def featurize(
    comp: SentenceCompressor,
    question: str,
    text: str,
    block_scores: list[float],
    qvec: np.ndarray,
    vecs: list[np.ndarray | None],
) -> tuple[np.ndarray, list[str], list[Any], Any] | None:
    keys = question_keys(question)
    blocks, units = comp._split(text, find_spans(text, keys))
    if not units or len(blocks) != len(block_scores):
        return None
    comp._score(question, keys, text, blocks, units, block_scores, trees=True)
    n = len(blocks)
    per: list[list[float]] = [[] for _ in range(n)]
    for u in units:
        per[u.block].append(u.score)
    top5 = sorted((u.score for u in units), reverse=True)[:5]
    cut = top5[-1] if top5 else 0.0
    umax = [max(s) if s else -10.0 for s in per]
    gmax = max(umax)
    cos = [float(v @ qvec) if v is not None else 0.0 for v in vecs]
    cmax = max(cos)
    retr = _unit_range(block_scores)
    own = comp.selector.score_terms(terms(question), [Counter(terms(text[b.start : b.end])) for b in blocks])
    own = _unit_range(own)
    urank, crank = _rank_inv(umax), _rank_inv(cos)
    rows = []
    for i, b in enumerate(blocks):
        s = sorted(per[i], reverse=True)
        rows.append(
            [
                umax[i],
                umax[i] - gmax,
                urank[i],
                s[1] if len(s) > 1 else s[0] if s else -10.0,
                float(sum(1 for x in per[i] if x >= cut)),
                retr[i],
                1.0 / (1 + i),
                cos[i],
                cos[i] - cmax,
                crank[i],
                comp.count(text[b.start : b.end]) / 100,
                own[i],
            ]
        )
    texts = [text[b.start : b.end] for b in blocks]
    return np.asarray(rows), texts, blocks, units


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--nq-limit", type=int, default=300)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    _, cache = harness()
    ns = argparse.Namespace(data=args.data, limit=None, nq_limit=None, split="all")
    runs = {s: retrieve_all(s, SPEC, ns, cache) for s in ("hotpotqa", "nq")}
    packaged = load_unit_model("packaged:qa-units")
    st = runs["nq"]["stages"]
    embed = st.embedder.embed

    def qembed(texts: Any) -> Any:
        return embed(texts).vectors

    # unit rows for the trees: HotpotQA span questions + NQ after the first 300
    unit_rows: dict[str, list[tuple[str, np.ndarray, np.ndarray]]] = {"hotpotqa": [], "nq": []}
    packed: dict[str, dict[str, tuple[str, list[float], list[str]]]] = {"hotpotqa": {}, "nq": {}}
    for s, run in runs.items():
        llm_count = run["stages"].llm.count_tokens
        packer = TokenBudgetPacker(llm_count, select_sentences=False, order=run["cfg"].packing.order)
        for idx, (item, hits) in enumerate(zip(run["items"], run["hits"], strict=True)):
            if not item.answers:
                continue
            ctx = packer.pack(item.question, hits[:TOP], 2048)
            by_id = {h.chunk.id: h.score for h in hits}
            bs = [by_id.get(c.chunk_id, 0.0) for c in ctx.citations]
            q = item.question.strip()
            packed[s][q] = (ctx.text, bs, [c.chunk_id for c in ctx.citations])
            if s == "nq" and idx < args.nq_limit:
                continue
            x, plain = SentenceCompressor(llm_count).unit_rows(item.question, ctx.text, bs)
            y = np.array(
                [answer_in_normalized(item.answers, normalize_answer(p)) for p in plain], dtype=float
            )
            unit_rows[s].append((q, x, y))
        print(s, len(unit_rows[s]), "questions with unit rows", flush=True)
    nq_train = unit_rows["nq"]
    fold = {q: i % 2 for i, (q, _, _) in enumerate(nq_train)}
    models: dict[int, UnitModel] = {}
    for f in (0, 1):
        xs = [x for _, x, _ in unit_rows["hotpotqa"]] + [x for q, x, _ in nq_train if fold[q] != f]
        ys = [y for _, _, y in unit_rows["hotpotqa"]] + [y for q, _, y in nq_train if fold[q] != f]
        baseline, trees = fit_trees(np.vstack(xs), np.concatenate(ys))
        models[f] = UnitModel.from_json({**packaged.to_json(), "baseline": baseline, "trees": trees}, "oof")
        print("trees for fold", f, flush=True)
    items = {it.question.strip(): it for it in runs["nq"]["items"]}
    all_ids = sorted({c for t in packed["nq"].values() for c in t[2]})
    vec_of = {c: np.asarray(v) for c, v in st.store.dense_vectors(all_ids).items()}
    questions = list(packed["nq"])
    qv = dict(zip(questions, qembed(questions), strict=True))
    llm_count = st.llm.count_tokens
    first = {it.question.strip() for it in runs["nq"]["items"][: args.nq_limit]}
    data: dict[str, list[tuple[str, np.ndarray, np.ndarray, float, list[str]]]] = {"train": [], "test": []}
    policy_rows: list[Any] = []
    for q, (text, bs, ids) in packed["nq"].items():
        test = q in first
        model = packaged if test else models[fold[q]]
        comp = SentenceCompressor(llm_count, unit_model=model, question_embed=qembed)
        found = featurize(comp, q, text, bs, qv[q], [vec_of.get(c) for c in ids])
        if found is None:
            continue
        x, texts, blocks, units = found
        y = np.array(
            [answer_in_normalized(items[q].answers, normalize_answer(t)) for t in texts], dtype=float
        )
        gate = model.multi_hop(q, qembed([plain_question(q)])[0])
        data["test" if test else "train"].append((q, x, y, gate, texts))
        if test:
            clauses = SentenceCompressor(llm_count, unit_model=model, question_embed=qembed).compress(
                q, text, CompressionTarget(tokens=132), block_scores=bs
            )
            policy_rows.append((q, x, gate, text, blocks, units, comp, clauses.text))
    print({k: len(v) for k, v in data.items()}, flush=True)
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    tr = [d for d in data["train"] if d[2].any()]
    X = np.vstack([d[1] for d in tr])
    Y = np.concatenate([d[2] for d in tr])
    sc = StandardScaler().fit(X)
    lr = LogisticRegression(C=1.0, max_iter=3000).fit(sc.transform(X), Y)
    gbm = HistGradientBoostingClassifier(max_iter=150, learning_rate=0.05, max_leaf_nodes=15).fit(X, Y)
    print("lr weights", dict(zip(BLOCK_FEATURES, np.round(lr.coef_[0], 2), strict=True)), flush=True)
    rules = {
        "best unit (shipped)": lambda x: int(np.argmax(x[:, 0])),
        "cosine": lambda x: int(np.argmax(x[:, 7])),
        "first (fused)": lambda x: 0,
        "logistic picker": lambda x: int(np.argmax(lr.decision_function(sc.transform(x)))),
        "gbm picker": lambda x: int(np.argmax(gbm.predict_proba(x)[:, 1])),
    }
    lines = [
        "| rule | sent whole (gate < 0.05, no or/both) | answer in the source sent | all single-hop gated (< 0.3) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, rule in rules.items():
        whole = [d for d in data["test"] if d[3] < WHOLE_SOURCE_GATE and not _ALTERNATIVES.search(d[0])]
        ok = sum(int(d[2][rule(d[1])]) for d in whole)
        loose = [d for d in data["test"] if d[3] < 0.3]
        ok2 = sum(int(d[2][rule(d[1])]) for d in loose)
        lines.append(f"| {name} | {len(whole)} | {ok} | {ok2} of {len(loose)} |")
        print(lines[-1], flush=True)
    # diagnostics: dense top-1 over the whole pool (LlamaIndex's rule) per test question
    every = st.store.get_chunks(list(chunk_ids_all(st.store)))
    ids_pool = sorted(every)
    pool_vecs = {c: np.asarray(v) for c, v in st.store.dense_vectors(ids_pool).items()}
    mat = np.vstack([pool_vecs[c] for c in ids_pool])
    texts_pool = [every[c].text for c in ids_pool]
    tally: dict[str, int] = {}
    for q, x, y, gate, _ in data["test"]:
        top = int(np.argmax(mat @ qv[q]))
        li = answer_in_normalized(items[q].answers, normalize_answer(texts_pool[top]))
        whole = gate < WHOLE_SOURCE_GATE and not _ALTERNATIVES.search(q)
        ours = bool(y[int(np.argmax(x[:, 0]))])
        key = f"{'whole' if whole else 'clauses'} li={int(li)} ours_pick={int(ours)} any16={int(y.any())}"
        tally[key] = tally.get(key, 0) + 1
    for k in sorted(tally):
        lines.append(f"- {k}: {tally[k]}")
        print(lines[-1])
    lines += [
        "",
        "| policy | NQ answer in context | context tokens (mean) | p95 |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name in POLICIES:
        ok, toks = 0, []
        for q, x, gate, text, blocks, units, comp, clauses in policy_rows:
            out = policy(name, q, x, gate, text, blocks, units, comp, clauses)
            ok += int(answer_in_normalized(items[q].answers, normalize_answer(out)))
            toks.append(comp.count(out))
        lines.append(
            f"| {name} | {ok} of {len(policy_rows)} | {np.mean(toks):.1f} | {np.percentile(toks, 95):.0f} |"
        )
        print(lines[-1], flush=True)
    emit(lines, args.out)


POLICIES = (
    "clauses only",
    "shipped (whole < 0.05)",
    "+ best unit of the cosine block",
    "+ cosine block whole",
    "+ cosine block whole if both <= 256",
    "+ best 2 units of the cosine block",
    "+ best 2 units of the cosine block, 1 when over the target",
    "+ best 2 units of the cosine block if gap > 0.02",
    "+ best 3 units of the cosine block",
    "two blocks differ: their units to the target",
    "two blocks differ: their units to 160",
    "whole < 0.1 + best unit of the cosine block",
    "whole < 0.3 + best unit of the cosine block",
    "whole < 0.3 + cosine block whole if both <= 256",
    "whole always + best unit of the cosine block",
)


def policy(
    name: str, q: str, x: np.ndarray, gate: float, text: str, blocks: Any, units: Any, comp: Any, clauses: str
) -> str:
    cut = 0.3 if "0.3" in name else 0.1 if "0.1" in name else 1.01 if "always" in name else WHOLE_SOURCE_GATE
    if name == "clauses only" or gate >= cut or _ALTERNATIVES.search(q):
        return clauses
    best = int(np.argmax(x[:, 0]))
    kept = [u for u in units if u.block == best]
    if comp.count(comp._render(text, blocks, kept)) > 256:
        return clauses
    other = None
    if "cosine" in name:
        other = int(np.argmax(x[:, 7]))
    elif "runner-up" in name:
        order = np.argsort(-x[:, 0])
        other = int(order[1]) if len(order) > 1 else None
    if "two blocks" in name:
        other = int(np.argmax(x[:, 7]))
        if other == best:
            return comp._render(text, blocks, kept)
        pool = [u for u in units if u.block in (best, other)]
        for u in pool:
            u.cost = comp.count(text[u.start : u.end]) + 1
        for b in (best, other):
            h = blocks[b].header
            blocks[b].header_cost = comp.count(text[h[0] : h[1]]) + 1 if h else 0
        return comp._render(text, blocks, comp._select(pool, blocks, 160 if "160" in name else 132, 1))
    if other is not None and other != best:
        theirs = [u for u in units if u.block == other]
        ranked = sorted(theirs, key=lambda u: -u.score)
        if "block whole" in name:
            both = kept + theirs
            if "if both" not in name or comp.count(comp._render(text, blocks, both)) <= 256:
                return comp._render(text, blocks, both)
            kept += ranked[:1]
        else:
            n = 3 if "3 units" in name else 2 if "2 units" in name else 1
            if "over the target" in name and comp.count(comp._render(text, blocks, kept + ranked[:2])) > 132:
                n = 1
            if "gap" in name and x[other, 7] - x[best, 7] <= 0.02:
                n = 0
            kept += ranked[:n]
    return comp._render(text, blocks, kept)


def chunk_ids_all(store: Any) -> list[str]:
    return [str(p.get("chunk_id")) for _, p in store._scroll(["chunk_id"]) if p]


if __name__ == "__main__":
    main()
