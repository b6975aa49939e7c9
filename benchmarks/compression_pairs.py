"""Train the compressor's block pair model on HotpotQA and measure it in cross-validation, side by side.

    .venv/bin/python benchmarks/compression_pairs.py [--data ../shared/data] [--seeds 0 1] [--write] [--out F]

- Features: `SentenceCompressor.block_pairs` (the product's own code) on each question's ~10 paragraphs.
- Model: a linear ranker (logistic regression on feature differences, no intercept) that scores each question's
  supporting pair above every other pair of that question.
- CV: the span-answer questions are shuffled (per seed) into two folds; a fold is compressed with a model trained
  on the other fold plus the yes/no questions (never on itself), and the compressor without the pair prior
  (`pair_weight=0`, the per-block BM25 prior as before) runs on the same prompts. Answer kept at 2x, 3x, 5x and
  10x, ratio reached, prompts within 10 % of the ratio, ms per 1k tokens. Also split by the file's halves
  (the first half is nearly all bridge questions, the second mostly comparisons), as earlier tables were.
- `--unit-words N`: the compressor's `max_unit_words` (features and compression alike; default the product's).
- `--write`: train on every question and write `ragcli/generation/block_pairs.json` (the packaged model).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from trained_common import commit, emit, machine  # noqa: E402

from ragcli.cost.tokens import counter_for  # noqa: E402
from ragcli.eval.normalize import answer_in_text, is_yes_no  # noqa: E402
from ragcli.generation.block_pairs import PACKAGED, BlockPairModel  # noqa: E402
from ragcli.generation.compression_types import CompressionTarget  # noqa: E402
from ragcli.generation.sentence_compressor import SentenceCompressor  # noqa: E402

RATIOS = (2.0, 3.0, 5.0, 10.0)


def load(data: Path) -> list[dict[str, Any]]:
    rows = []
    for line in (data / "hotpotqa" / "questions.jsonl").open(encoding="utf-8"):
        r = json.loads(line)
        golds = [s for o in r["answers_objects"] for s in o.get("spans", [])]
        rows.append(
            {
                "id": r["question_id"],
                "question": r["question_text"],
                "golds": golds,
                "span": bool(golds) and not is_yes_no(golds),
                "text": "\n\n".join(f"{c['title']}\n{c['paragraph_text']}" for c in r["contexts"]),
                "gold": tuple(i for i, c in enumerate(r["contexts"]) if c["is_supporting"]),
                "n": len(r["contexts"]),
            }
        )
    return rows


def featurize(comp: SentenceCompressor, rows: list[dict[str, Any]]) -> None:
    for r in rows:
        pairs, x = comp.block_pairs(r["question"], r["text"])
        r["pairs"], r["x"] = pairs, x
        # blocks are the paragraphs when none has a blank line inside (true of HotpotQA's)
        r["aligned"] = bool(pairs) and max(j for _, j in pairs) + 1 == r["n"]


def train(rows: list[dict[str, Any]], c: float = 1.0) -> BlockPairModel:
    from sklearn.linear_model import LogisticRegression

    diffs, ys = [], []
    for r in rows:
        if not r["aligned"] or len(r["gold"]) != 2:
            continue
        g = r["pairs"].index(tuple(sorted(r["gold"])))
        for k in range(len(r["pairs"])):
            if k != g:
                diffs += [r["x"][g] - r["x"][k], r["x"][k] - r["x"][g]]
                ys += [1, 0]
    m = LogisticRegression(C=c, max_iter=5000, fit_intercept=False)
    m.fit(np.array(diffs), ys)
    used = sum(1 for r in rows if r["aligned"] and len(r["gold"]) == 2)
    return BlockPairModel(m.coef_[0].astype(np.float64), f"HotpotQA dev (distractor), {used} questions")


def run(comp: SentenceCompressor, rows: list[dict[str, Any]], ratio: float) -> list[dict[str, float]]:
    count = comp.count
    out = []
    for r in rows:
        res = comp.compress(r["question"], r["text"], CompressionTarget(ratio=ratio))
        reached = res.original_tokens / max(res.tokens, 1)
        out.append(
            {
                "kept": float(answer_in_text(r["golds"], res.text)),
                "reached": reached,
                "within": float(abs(reached - ratio) <= 0.1 * ratio),
                "ms_per_1k": 1000 * res.seconds / max(res.original_tokens, 1) * 1000,
                "tokens": float(count(r["text"])),
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--c", type=float, default=1.0, help="inverse regularisation of the ranker")
    ap.add_argument(
        "--unit-words",
        type=int,
        default=25,
        help="longest unit before splitting (60 before 2026-12-03 night)",
    )
    ap.add_argument("--write", action="store_true", help="train on all questions, write the packaged model")
    ap.add_argument("--out", type=Path, help="also write the markdown here")
    args = ap.parse_args()
    count = counter_for("gpt-4").count
    rows = load(args.data)
    featurize(SentenceCompressor(count, max_unit_words=args.unit_words), rows)
    spans = [r for r in rows if r["span"]]
    yes_no = [r for r in rows if not r["span"]]
    half = {r["id"]: ("first" if i < len(spans) // 2 else "second") for i, r in enumerate(spans)}
    lines = [
        "# Block pair prior for the compressor: 2-fold CV on HotpotQA",
        "",
        f"- date {datetime.now(UTC).isoformat(timespec='minutes')}, commit {commit()}, {machine()}, "
        f"command `python benchmarks/compression_pairs.py {' '.join(sys.argv[1:])}`",
        f"- {len(spans)} span-answer questions (evaluated), {len(yes_no)} yes/no (training only); "
        f"{sum(r['aligned'] for r in rows)} of {len(rows)} with one block per paragraph; seeds {args.seeds}, "
        f"ranker C={args.c}, units <= {args.unit_words} words",
        "",
    ]
    # per (method, ratio): one result per question per seed
    results: dict[tuple[str, float], list[dict[str, float]]] = {}
    which: dict[tuple[str, float], list[str]] = {}
    plain = SentenceCompressor(count, pair_weight=0.0, max_unit_words=args.unit_words)
    for seed in args.seeds:
        order = list(spans)
        random.Random(seed).shuffle(order)
        folds = [order[: len(order) // 2], order[len(order) // 2 :]]
        for f, test in enumerate(folds):
            model = train(folds[1 - f] + yes_no, args.c)
            paired = SentenceCompressor(count, pair_model=model, max_unit_words=args.unit_words)
            for ratio in RATIOS:
                for name, comp in (("pairs", paired), ("plain", plain)):
                    results.setdefault((name, ratio), []).extend(run(comp, test, ratio))
                    which.setdefault((name, ratio), []).extend(half[r["id"]] for r in test)
    lines += [
        "| ratio | prior | answer kept | first half (bridge) | second half (comparisons) | ratio reached | "
        "within 10 % | ms / 1k tokens (p50) |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for ratio in RATIOS:
        for name, label in (("plain", "per-block BM25 (before)"), ("pairs", "**block pairs**")):
            res, halves = results[(name, ratio)], which[(name, ratio)]

            def kept(part: str | None, res: list[dict[str, float]] = res, halves: list[str] = halves) -> str:
                vals = [x["kept"] for x, h in zip(res, halves, strict=True) if part is None or h == part]
                return f"{100 * statistics.mean(vals):.1f} %"

            lines.append(
                f"| {ratio:g}x | {label} | {kept(None)} | {kept('first')} | {kept('second')} | "
                f"{statistics.mean(x['reached'] for x in res):.2f}x | "
                f"{100 * statistics.mean(x['within'] for x in res):.0f} % | "
                f"{statistics.median(x['ms_per_1k'] for x in res):.1f} |"
            )
    if args.write:
        model = train(rows, args.c)
        PACKAGED.write_text(json.dumps(model.to_json(), indent=2) + "\n", encoding="utf-8")
        lines += ["", f"Wrote {PACKAGED.relative_to(ROOT)} (trained on every question: {model.trained_on})."]
    emit(lines, args.out)


if __name__ == "__main__":
    main()
