"""The `aligned` cache verifier against the cosine of the same encoder, side by side on QQP's report pairs.

    .venv/bin/python benchmarks/cache_aligned.py --work W [--epochs 1] [--out F.md]

Split as `cache_qqp.py`: QQP by connected component, 60 % tune / 40 % report (seed 0); the tune pairs go to
`ragcli train cache-verifier --kind aligned` whole (its own 70/30 split by component into training and
calibration). Per encoder (the packaged MiniLM frozen, and fine-tuned for `--epochs` on the training part), the
product trains the aligned verifier: its regression is cross-fitted on the calibration part and its threshold is
chosen on the out-of-fold scores. The cosine verifier is the same folder with its kind set to `cosine`, calibrated
by `ragcli cache calibrate`'s function on the same calibration part. Both are then read on every report pair.
Thresholds: the lowest whose precision's 95 % Wilson lower bound meets `--target` on the calibration part (>= 20
hits). "In-sample" columns pick the threshold on the report pairs themselves (>= 30 hits): the best each could do.
Latency: one question against four cached candidates, `verifier.score`, which embeds all five texts.

`--replay-groups N` also replays `cache_qqp.py`'s log (N report questions asked twice in other words, N new ones)
through an `AnswerCache` with each fine-tuned verifier at its calibrated threshold; `--replay-only` replays the
verifiers a previous run left in `--work` without training them again.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from trained_common import commit, emit, loadavg, machine  # noqa: E402

IN_SAMPLE = (0.90, 0.95)
AT_HIT_RATE = (0.10, 0.20, 0.30)


def precision_at_hit_rate(scores: np.ndarray, y: np.ndarray, hit_rate: float) -> float:
    """Point precision of the highest threshold that serves `hit_rate` of the label-1 pairs."""
    order = np.argsort(-scores, kind="stable")
    correct = np.cumsum(y[order])
    k = int(np.searchsorted(correct, hit_rate * y.sum()))
    return float(correct[k] / (k + 1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--work", type=Path, required=True, help="a scratch folder (verifiers, pair files)")
    ap.add_argument(
        "--epochs", type=int, default=1, help="fine-tuning epochs of the second encoder (0: none)"
    )
    ap.add_argument(
        "--target", type=float, default=0.90, help="the precision the thresholds are calibrated to"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lookups", type=int, default=100)
    ap.add_argument("--limit", type=int, help="only the first N QQP pairs (a smoke run)")
    ap.add_argument(
        "--replay-groups", type=int, default=0, help="questions asked twice in the replay (0: none)"
    )
    ap.add_argument(
        "--replay-only", action="store_true", help="replay the verifiers of an earlier run in --work"
    )
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    from ragcli.resources import offline_env

    offline_env()
    from ragcli.eval.cache_eval import score_pairs
    from ragcli.generation.cache_calibration import best_at_precision, measure_at
    from ragcli.generation.cache_verifier import open_verifier

    t_start = time.time()
    load_before = loadavg()
    tune, report = qqp_split(Path(args.data), args.seed, args.limit)
    args.work.mkdir(parents=True, exist_ok=True)
    tune_file = args.work / "tune_pairs.jsonl"
    tune_file.write_text("".join(json.dumps(asdict(p)) + "\n" for p in tune))
    home = args.work / "home"
    a = [p.text_a for p in report]
    y = np.array([p.label for p in report])
    lines = [
        "- date "
        + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        + f", commit {commit()}, machine {machine()}",
        f"- command: `python benchmarks/cache_aligned.py --epochs {args.epochs} --target {args.target}`",
        f"- QQP report pairs: {len(report)} ({int(y.sum())} label 1); tune pairs: {len(tune)}",
        "",
        f"| verifier | threshold (calibrated at {args.target}) | report hits | wrong hits | report precision "
        "[95 % interval] | report hit rate | in-sample hit rate at 0.90 / 0.95 | precision at hit rate "
        + " / ".join(f"{h:.2f}" for h in AT_HIT_RATE)
        + " | train s |",
        "| --- | ---: | ---: | ---: | --- | ---: | --- | --- | ---: |",
    ]
    timing: list[str] = []
    for epochs in [] if args.replay_only else sorted({0, args.epochs}):
        encoder = "packaged, frozen" if epochs == 0 else f"fine-tuned {epochs} epoch(s)"
        cos_folder, folder, seconds = train_both(tune_file, home, epochs, args.target, args.seed, len(tune))
        rng = random.Random(args.seed)
        asked = rng.sample(a, args.lookups)
        for kind, vfolder in (("cosine", cos_folder), ("aligned", folder)):
            v = open_verifier(vfolder)
            t0 = time.time()
            scores = score_pairs(v, report)  # the aligned kind embeds nothing here and reads the texts
            score_s = time.time() - t0
            thr = v.threshold
            best = [best_at_precision(scores, y, t) for t in IN_SAMPLE]
            in_sample = " / ".join(
                f"{p.hit_rate:.3f}" if p is not None and p.hits >= 30 else "0" for p in best
            )
            at_rate = " / ".join(f"{precision_at_hit_rate(scores, y, h):.3f}" for h in AT_HIT_RATE)
            label = f"{kind}, {encoder}"
            if np.isfinite(thr):
                p = measure_at(scores, y, thr)
                lines.append(
                    f"| {label} | {thr:.4f} | {p.hits} | {p.hits - p.correct} | {p.precision:.3f} "
                    f"[{p.lower:.3f}, {p.upper:.3f}] | {p.hit_rate:.3f} | {in_sample} | {at_rate} | "
                    f"{seconds[kind]:.0f} |"
                )
            else:
                lines.append(
                    f"| {label} | none | 0 | 0 | - | 0 | {in_sample} | {at_rate} | {seconds[kind]:.0f} |"
                )
            print(lines[-1], flush=True)
            v.score(asked[:1], a[:1])  # load the encoder before timing
            ms = []
            for q in asked:
                candidates = rng.sample(a, 4)
                t0 = time.perf_counter()
                v.score([q] * 4, candidates)
                ms.append(1000 * (time.perf_counter() - t0))
            timing.append(
                f"- {label}: one question against 4 candidates p50 {np.percentile(ms, 50):.1f} ms, p95 "
                f"{np.percentile(ms, 95):.1f} ms; scoring all report pairs {score_s:.0f} s"
            )
    if args.replay_only:
        lines = lines[:3]
    else:
        lines += ["", "Latency (`verifier.score`, embedding included):", *timing]
    if args.replay_groups:
        lines += replay_lines(args, report, home)
    lines += [
        "",
        f"- load average before / after: {load_before} / {loadavg()}; whole run {time.time() - t_start:.0f} s",
    ]
    emit(lines, args.out)


def qqp_split(data: Path, seed: int, limit: int | None = None) -> tuple[list, list]:
    """`cache_qqp.py`'s split: QQP by connected component, 60 % tune (shuffled) / 40 % report."""
    from ragcli.eval.cache_pairs import load_pairs, split_pairs

    tune, report = split_pairs(load_pairs(data / "qqp" / "pairs.jsonl", limit=limit), [0.6, 0.4], seed=seed)
    return random.Random(seed).sample(list(tune), len(tune)), list(report)


def train_both(
    tune_file: Path, home: Path, epochs: int, target: float, seed: int, max_pairs: int
) -> tuple[Path, Path, dict[str, float]]:
    """The aligned verifier as `ragcli train cache-verifier --kind aligned` trains it on `tune_file`, and the
    cosine verifier of the same encoder (its folder copied, kind set to `cosine`, calibrated on the same
    calibration part): their folders under `home/verifiers` and the seconds each took."""
    from ragcli.eval.cache_pairs import load_pairs, split_pairs
    from ragcli.train.cache_verifier import VerifierRecipe, calibrate_verifier, train_cache_verifier

    recipe = VerifierRecipe(
        kind="aligned", epochs=epochs, max_pairs=max_pairs, target_precision=target, seed=seed
    )
    t0 = time.time()
    train_cache_verifier(tune_file, f"aligned-e{epochs}", home, recipe)
    seconds = {"aligned": time.time() - t0}
    folder = home / "verifiers" / f"aligned-e{epochs}"
    cos_folder = folder.with_name(f"cosine-e{epochs}")
    shutil.rmtree(cos_folder, ignore_errors=True)
    shutil.copytree(folder, cos_folder)
    cos_card = json.loads((cos_folder / "card.json").read_text())
    cos_card.update({"kind": "cosine", "name": cos_folder.name})
    (cos_folder / "card.json").write_text(json.dumps(cos_card, indent=2))
    _, calib = split_pairs(
        load_pairs(tune_file, limit=recipe.max_pairs),
        [1 - recipe.calib_fraction, recipe.calib_fraction],
        seed=recipe.seed,
    )
    calib_file = tune_file.with_name("calibration_pairs.jsonl")
    calib_file.write_text("".join(json.dumps(asdict(p)) + "\n" for p in calib))
    t0 = time.time()
    calibrate_verifier(cos_folder, calib_file, target_precision=target)
    seconds["cosine"] = time.time() - t0
    return cos_folder, folder, seconds


def replay_lines(args: argparse.Namespace, report: list, home: Path) -> list[str]:
    """`cache_qqp.py`'s replay through each verifier of the fine-tuned encoder, at its card's threshold."""
    import cache_qqp_parts as parts
    from cache_qqp import VectorCache

    vc = VectorCache(args.work / "minilm_vectors.npz")
    ns = argparse.Namespace(seed=args.seed, replay_groups=args.replay_groups, kind="head")
    rows: dict[str, dict] = {}
    shape = ""
    for kind in ("cosine", "aligned"):
        folder = home / "verifiers" / f"{kind}-e{args.epochs}"
        threshold = json.loads((folder / "card.json").read_text())["threshold"]
        label = f"{kind}, encoder fine-tuned {args.epochs} epoch(s), threshold {threshold}"
        rep = parts.replay_run(ns, report, vc, args.work, verifier_at=(label, folder))
        rows.update(rep["runs"])
        shape = f"{rep['questions']} report-part questions ({rep['asked_twice']} asked twice in other words, {rep['new']} new)"
    out = ["", f"Replay: {shape}, random order:", "", "| cache | LLM calls | calls avoided | exact | semantic | "
           "wrong answers served |", "| --- | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for name, r in rows.items():
        out.append(
            f"| {name} | {r['llm_calls']} | {r['calls_avoided']} | {r['exact_hits']} | {r['semantic_hits']} | "
            f"{r['wrong_answers_served']} |"
        )
    for name, r in rows.items():
        if name.startswith("exact + verifier") and r["wrong_examples"]:
            out += ["", f"Wrong answers served by {name}:", ""]
            out += [f"- {w['asked']!r} got the answer to {w['served_for']!r}" for w in r["wrong_examples"]]
    return out


if __name__ == "__main__":
    main()
