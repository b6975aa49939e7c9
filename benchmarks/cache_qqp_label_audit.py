"""How much of what QQP calls a wrong hit is the same question? A reader's audit at a given hit rate.

A verifier is ranked by its cosine on the report pairs of `cache_qqp.py`'s split (connected components, seed 0,
60/40). At the depth where its correct hits reach `--hit-rate` of the label-1 pairs, a seeded sample of its wrong
hits (label 0) is printed with a key and each reader's verdict from `--verdicts` (`{"readers": {name: {key:
verdict}}}`): `same` (one answer would serve both askers), `different`, or `unclear`. Per reader, and for the pairs
every reader calls the same, it estimates how many of the wrong hits are the same question, and so the precision
that QQP's labels give a verifier that served every same-question pair at that depth and nothing else (`unclear`
counts as different, which favours the goal). `--correct-sample N` also samples N of the correct hits (label 1), and
from both samples estimates the precision of the served pairs against each reader.

    .venv/bin/python benchmarks/cache_qqp_label_audit.py --finetune-epochs 1 --sample 120 --correct-sample 80
        [--hit-rate 0.30] [--seed 0] [--work DIR] [--verdicts benchmarks/results/cache_label_audit.json]

`--finetune-epochs N` fine-tunes the packaged MiniLM as `ragcli train cache-verifier --epochs N` does, on the
training part that `cache_cross_verifier.py` uses (70 % of the tune part; about 11 min for one epoch on 2 cores),
and keeps it in `--work`; `--encoder DIR` reads another sentence-transformers folder instead. Either is read at
64 tokens, as the verifier's recipe trains (`cache_finetune_cosine.cosines`). The keys are a hash of the two texts,
so the verdicts file holds no QQP text.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from cache_finetune_cosine import cosines  # noqa: E402

from ragcli.eval.cache_pairs import LabeledPair, load_pairs, split_pairs  # noqa: E402
from ragcli.generation.cache_calibration import wilson_interval  # noqa: E402
from ragcli.resources import embedding_model_dir, offline_env  # noqa: E402
from ragcli.train.cache_verifier import VerifierRecipe, finetune_encoder  # noqa: E402


def pair_key(p: LabeledPair) -> str:
    return hashlib.sha1(f"{p.text_a}\x1f{p.text_b}".encode()).hexdigest()[:12]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--encoder", type=Path, default=None)
    ap.add_argument("--finetune-epochs", type=int, default=0, help="without --encoder: fine-tune one first")
    ap.add_argument("--work", type=Path, default=Path("/tmp/qqp_label_audit"))
    ap.add_argument("--hit-rate", type=float, default=0.30)
    ap.add_argument("--sample", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--correct-sample", type=int, default=0, help="also sample this many of the correct hits")
    ap.add_argument(
        "--verdicts", type=Path, default=ROOT / "benchmarks" / "results" / "cache_label_audit.json"
    )
    args = ap.parse_args()
    offline_env()
    tune, report = split_pairs(load_pairs(args.data / "qqp" / "pairs.jsonl"), [0.6, 0.4], seed=0)
    encoder = args.encoder or embedding_model_dir()
    if args.encoder is None and args.finetune_epochs > 0:
        encoder = args.work / f"encoder_e{args.finetune_epochs}"
        if not encoder.exists():  # as cache_cross_verifier.py splits: 70 % of the tune part trains
            train, _ = split_pairs(tune, [0.7, 0.3], seed=0)
            recipe = VerifierRecipe(kind="cosine", epochs=args.finetune_epochs, seed=0)
            finetune_encoder(train, encoder, recipe)
    scores = cosines(str(encoder), report)
    labels = np.array([p.label for p in report])
    order = np.argsort(-scores, kind="stable")
    correct_so_far = np.cumsum(labels[order])
    depth = int(np.searchsorted(correct_so_far, args.hit_rate * labels.sum())) + 1
    served = order[:depth]
    correct = int(labels[served].sum())
    wrong = [int(i) for i in served if labels[i] == 0]
    print(
        f"report pairs {len(report)} (label 1: {int(labels.sum())}); at cosine >= {scores[order[depth - 1]]:.4f}: "
        f"{depth} hits, {correct} correct, {len(wrong)} wrong, precision {correct / depth:.3f}, "
        f"hit rate {correct / labels.sum():.3f}"
    )
    readers: dict[str, dict[str, str]] = (
        json.loads(args.verdicts.read_text())["readers"] if args.verdicts.exists() else {}
    )
    rng = random.Random(args.seed)
    sample = rng.sample(wrong, min(args.sample, len(wrong)))
    right = [int(i) for i in served if labels[i] == 1]
    right_sample = rng.sample(right, min(args.correct_sample, len(right)))
    keys = [pair_key(report[i]) for i in sample]
    right_keys = [pair_key(report[i]) for i in right_sample]
    for n, (i, key) in enumerate(zip(sample + right_sample, keys + right_keys, strict=True)):
        said = " ".join(f"{v.get(key, '?'):9s}" for v in readers.values())
        print(f"{n:3d} {key} label {labels[i]} {said} {report[i].text_a} || {report[i].text_b}")
    if readers:
        every: dict[str, str | None] = {  # None where a reader has no verdict
            k: None if any(k not in v for v in readers.values()) else
            "same" if all(v[k] == "same" for v in readers.values()) else "other"
            for k in keys + right_keys
        }  # fmt: skip
        for name, verdicts in [*readers.items(), ("every reader says same", every)]:
            ceiling_line(name, [verdicts.get(k) for k in keys], correct, len(wrong))
            if right_keys:
                reader_precision(
                    name,
                    [verdicts.get(k) for k in keys],
                    [verdicts.get(k) for k in right_keys],
                    correct,
                    len(wrong),
                )


def same_share(verdicts: list[str | None]) -> tuple[int, float, float, float] | None:
    """Of the pairs with a verdict: how many, and the share called the same question with its 95 % Wilson interval."""
    judged = [v for v in verdicts if v is not None]
    if not judged:
        return None
    k = sum(v == "same" for v in judged)
    return (len(judged), k / len(judged), *wilson_interval(k, len(judged), 0.95))


def ceiling_line(name: str, verdicts: list[str | None], correct: int, wrong: int) -> None:
    """How many wrong hits are the same question by this reader, and the precision QQP's labels would give a
    verifier that served every same-question pair at this depth and nothing else."""
    share = same_share(verdicts)
    if share is None:
        return
    judged = [v for v in verdicts if v is not None]
    _, p, lo, hi = share
    same = [f * wrong for f in (p, lo, hi)]
    ceiling = [correct / (correct + s) for s in same]
    counts = {v: judged.count(v) for v in sorted(set(judged))}
    print(
        f"{name}: {counts} of {len(verdicts)}; same question {p:.3f} [{lo:.3f}, {hi:.3f}] of the wrong "
        f"hits, about {same[0]:.0f} [{same[1]:.0f}, {same[2]:.0f}] of {wrong}; precision ceiling "
        f"{ceiling[0]:.3f} [{ceiling[2]:.3f}, {ceiling[1]:.3f}]"
    )


def reader_precision(
    name: str, on_wrong: list[str | None], on_right: list[str | None], correct: int, wrong: int
) -> None:
    """The share of the served pairs that are the same question to this reader, estimated from both samples (its
    interval joins the two samples' Wilson bounds, so it is wider than either)."""
    shares = same_share(on_wrong), same_share(on_right)
    if shares[0] is None or shares[1] is None:
        return
    (_, w, w_lo, w_hi), (_, r, r_lo, r_hi) = shares
    hits = correct + wrong
    print(
        f"{name}: label-1 hits the same question {r:.3f} [{r_lo:.3f}, {r_hi:.3f}]; the served pairs' precision "
        f"against this reader {(correct * r + wrong * w) / hits:.3f} "
        f"[{(correct * r_lo + wrong * w_lo) / hits:.3f}, {(correct * r_hi + wrong * w_hi) / hits:.3f}]"
    )


if __name__ == "__main__":
    main()
