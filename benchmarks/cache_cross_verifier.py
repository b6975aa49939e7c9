"""A MiniLM cross-encoder as the answer cache's verifier on QQP: does reading both questions beat cosine?

    nice -n 10 .venv/bin/python benchmarks/cache_cross_verifier.py [--data ../shared/data]
        [--train-pairs 8000 (0: all)] [--epochs 1] [--lr 4e-5] [--base MODEL] [--scores-out FILE.npz]
        [--cosine-encoder DIR]

Same split as benchmarks/cache_qqp.py: QQP by connected component into tune (60 %) and report (40 %); the tune
part again into training (70 %) and calibration (30 %). The packaged all-MiniLM-L6-v2 gets a one-logit head and is
fine-tuned with ragcli's cross-encoder loop (binary cross-entropy, 64 tokens, batch 32, each pair in a random
order); a pair's score is its logit averaged over both orders. Threshold: the lowest whose calibration precision
has a 95 % Wilson lower bound >= 0.95; then precision and hit rate on the report part at that threshold, and the
best the report part allows in-sample. Prints the numbers; copy them into benchmarks/results/cache.md.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ragcli.eval.cache_pairs import LabeledPair, load_pairs, split_pairs
from ragcli.generation.cache_calibration import best_at_precision, choose_threshold, measure_at
from ragcli.resources import embedding_model_dir, offline_env
from ragcli.retrieval.cross_encoder_backends import load_pair_scorer
from ragcli.train.cross_encoder_training import Pair, fine_tune_cross_encoder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--train-pairs", type=int, default=8000)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=4e-5)
    ap.add_argument("--base", default=None, help="model to start from (default: the packaged MiniLM)")
    ap.add_argument("--scores-out", type=Path, default=None, help="save calibration and report scores (.npz)")
    ap.add_argument(
        "--cosine-encoder", type=Path, default=None,
        help="also score by this encoder's cosine, and a logistic stack of both fitted on the calibration part",
    )  # fmt: skip
    args = ap.parse_args()
    offline_env()
    pairs = load_pairs(args.data / "qqp" / "pairs.jsonl")
    tune, report = split_pairs(pairs, [0.6, 0.4], seed=0)
    train, calib = split_pairs(tune, [0.7, 0.3], seed=0)
    train = train[: args.train_pairs] if args.train_pairs > 0 else train
    print(f"tune {len(tune)}, report {len(report)}, train {len(train)}, calibration {len(calib)}", flush=True)
    rng = random.Random(0)
    rows = [
        Pair(p.text_a, p.text_b, float(p.label))
        if rng.random() < 0.5
        else Pair(p.text_b, p.text_a, float(p.label))
        for p in train
    ]
    out = Path(tempfile.mkdtemp()) / "model"
    t0 = time.time()

    def step(s: int, total: int, loss: float) -> None:
        if s % 50 == 0 or s == total:
            print(f"step {s}/{total} loss {loss:.3f} {time.time() - t0:.0f}s", flush=True)

    fine_tune_cross_encoder(
        rows, out, base=args.base or str(embedding_model_dir()), epochs=args.epochs, batch_size=32,
        learning_rate=args.lr, max_length=64, positive_weight=1.0, on_step=step,
    )  # fmt: skip
    print(f"training: {time.time() - t0:.0f} s", flush=True)
    _, score_pairs = load_pair_scorer(str(out), "torch", 64, batch_size=128, shared=False)

    def score(ps: list[LabeledPair]) -> np.ndarray:
        a, b = [p.text_a for p in ps], [p.text_b for p in ps]
        return (np.asarray(score_pairs(a, b)) + np.asarray(score_pairs(b, a))) / 2

    t1 = time.time()
    cs, cy = score(calib), np.array([p.label for p in calib])
    print(f"calibration scoring: {2 * len(calib) / (time.time() - t1):.0f} pair-orders/s", flush=True)
    cal = choose_threshold(cs, cy, target_precision=0.95)
    print("calibration:", cal, flush=True)
    for q in (0.9, 0.95, 0.97):
        print(f"calibration part, best point precision >= {q}:", best_at_precision(cs, cy, q), flush=True)
    rs, ry = score(report), np.array([p.label for p in report])
    if args.scores_out:
        np.savez(args.scores_out, calib=cs, calib_y=cy, report=rs, report_y=ry)
    if cal.serves:
        print("report at the calibrated threshold:", measure_at(rs, ry, cal.threshold))
    print("report part, best point precision >= 0.95 (in-sample):", best_at_precision(rs, ry, 0.95))
    print(f"report accuracy at logit 0: {((rs > 0) == (ry == 1)).mean():.3f}")
    if args.cosine_encoder:
        stack_with_cosine(args.cosine_encoder, calib, report, (cs, cy), (rs, ry))


def stack_with_cosine(
    encoder: Path,
    calib: list[LabeledPair],
    report: list[LabeledPair],
    cross_calib: tuple[np.ndarray, np.ndarray],
    cross_report: tuple[np.ndarray, np.ndarray],
) -> None:
    """The cross-encoder, the encoder's cosine, and a logistic regression over both fitted on the calibration part:
    each calibrated there at 0.95 and 0.90 and read on the report part."""
    from cache_finetune_cosine import cosines
    from sklearn.linear_model import LogisticRegression

    (cs, cy), (rs, ry) = cross_calib, cross_report
    both = cosines(str(encoder), calib + report)  # one model load for both parts
    cc, rc = both[: len(calib)], both[len(calib) :]
    stack = LogisticRegression().fit(np.column_stack([cs, cc]), cy)
    views = {
        "cross-encoder": (cs, rs),
        "cosine": (cc, rc),
        "stack": (stack.decision_function(np.column_stack([cs, cc])), stack.decision_function(np.column_stack([rs, rc]))),
    }  # fmt: skip
    for name, (c, r) in views.items():
        for target in (0.95, 0.90):
            cal = choose_threshold(c, cy, target_precision=target)
            held = measure_at(r, ry, cal.threshold) if cal.serves else "no threshold qualifies"
            print(f"{name}, target {target}: report at the calibrated threshold: {held}", flush=True)
            print(
                f"{name}, report best point precision >= {target} (in-sample):",
                best_at_precision(r, ry, target),
            )


if __name__ == "__main__":
    main()
