"""The cache verifier's kinds on QQP's report pairs: the head over two sentence vectors against the encoder's
cosine alone (`ragcli train cache-verifier --kind cosine`), with the packaged encoder and with the one fine-tuned
on the tune pairs.

    .venv/bin/python benchmarks/cache_qqp.py --train-pairs 24315 --report-pairs 16210 --finetune-epochs 1 \\
        --skip-latency --work W --out F          # trains qqp-frozen and qqp-finetuned under W
    .venv/bin/python benchmarks/cache_verifier_kinds.py --work W [--out F.md]

Same split as `cache_qqp.py` (QQP by connected component, 60 % tune / 40 % report, seed 0; the verifiers' own
70/30 split of the tune pairs into training and calibration). The fine-tuned encoder is read from the
`qqp-finetuned` verifier under W and not trained again: a cosine verifier is that folder with the card's kind set
to `cosine`. Every verifier's threshold is chosen as `ragcli train cache-verifier` and `ragcli cache calibrate`
choose it (`choose_threshold`: the lowest whose precision's 95 % Wilson lower bound meets the target, >= 20 hits)
on the calibration pairs, at each target precision, then read on all report pairs; the last column gives the best
hit rate at the target read on the report pairs themselves (in-sample).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from trained_common import emit  # noqa: E402

TARGETS = (0.90, 0.95)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--work", type=Path, required=True, help="the --work folder of a cache_qqp.py run")
    ap.add_argument("--train-pairs", type=int, default=24315, help="as given to cache_qqp.py")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--replay-groups", type=int, default=600, help="the replay's questions asked twice (0: none)"
    )
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    from ragcli.resources import offline_env

    offline_env()
    from ragcli.eval.cache_pairs import load_pairs, split_pairs
    from ragcli.generation.cache_calibration import best_at_precision, choose_threshold, measure_at
    from ragcli.generation.cache_verifier import open_verifier
    from ragcli.train.cache_verifier import VerifierRecipe

    pairs = load_pairs(Path(args.data) / "qqp" / "pairs.jsonl")
    tune, report = split_pairs(pairs, [0.6, 0.4], seed=args.seed)
    sub = random.Random(args.seed).sample(list(tune), min(args.train_pairs, len(tune)))
    recipe = VerifierRecipe(seed=args.seed)
    _, calib = split_pairs(sub, [1 - recipe.calib_fraction, recipe.calib_fraction], seed=recipe.seed)
    calib_file = args.work / "calibration_pairs.jsonl"
    calib_file.write_text("".join(json.dumps(asdict(p)) + "\n" for p in calib))
    verifiers = args.work / "home" / "verifiers"
    finetuned = verifiers / "qqp-finetuned"
    if not (finetuned / "encoder").is_dir():
        raise SystemExit(
            f"no fine-tuned encoder under {finetuned}: run cache_qqp.py --finetune-epochs 1 first"
        )
    kinds = verifiers / "kinds"
    shutil.rmtree(kinds, ignore_errors=True)
    kinds.mkdir()
    made: dict[str, tuple[Path, str]] = {}  # label -> the copy's folder, the verifier its encoder came from
    for label, source, kind in (
        ("head, fine-tuned encoder", finetuned, "head"),
        ("cosine, fine-tuned encoder", finetuned, "cosine"),
        ("head, packaged encoder (frozen)", verifiers / "qqp-frozen", "head"),
        ("cosine, packaged encoder (frozen)", verifiers / "qqp-frozen", "cosine"),
    ):
        folder = kinds / f"{kind}-{source.name}"
        shutil.copytree(source, folder)
        card = json.loads((folder / "card.json").read_text())
        card["kind"] = kind
        (folder / "card.json").write_text(json.dumps(card, indent=2))
        made[label] = (folder, source.name)
    ca, cb = [p.text_a for p in calib], [p.text_b for p in calib]
    cy = np.array([p.label for p in calib])
    a, b = [p.text_a for p in report], [p.text_b for p in report]
    y = np.array([p.label for p in report])
    lines = [
        f"QQP report pairs: {len(report)} ({int(y.sum())} label 1); calibration pairs: {len(calib)}.",
        "",
        "| verifier | target | threshold (calibration) | report hits | report precision [95 % interval] | "
        "report hit rate | in-sample hit rate at the target |",
        "| --- | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    vectors: dict[
        str, tuple[dict[str, int], np.ndarray]
    ] = {}  # encoder's source -> its vectors, each text once
    for label, (folder, source) in made.items():
        v = open_verifier(folder)
        if source not in vectors:  # the same encoder scores both kinds
            unique = list(dict.fromkeys([*ca, *cb, *a, *b]))
            vectors[source] = ({t: i for i, t in enumerate(unique)}, v.embed(unique))
        row, vecs = vectors[source]

        def score(xs: list[str], zs: list[str]) -> np.ndarray:
            return v.score_vectors(xs, zs, vecs[[row[t] for t in xs]], vecs[[row[t] for t in zs]])  # noqa: B023

        calib_scores, scores = score(ca, cb), score(a, b)
        for target in TARGETS:
            cal = choose_threshold(calib_scores, cy, target_precision=target)
            best = best_at_precision(scores, y, target)
            in_sample = f"{best.hit_rate:.3f}" if best is not None and best.hits >= 30 else "0"
            if not cal.serves:
                lines.append(f"| {label} | {target} | none | 0 | - | 0 | {in_sample} |")
            else:
                p = measure_at(scores, y, cal.threshold)
                lines.append(
                    f"| {label} | {target} | {cal.threshold:.4f} | {p.hits} | {p.precision:.3f} "
                    f"[{p.lower:.3f}, {p.upper:.3f}] | {p.hit_rate:.3f} | {in_sample} |"
                )
            print(lines[-1], flush=True)
    if args.replay_groups:
        lines += replay_lines(args, report, made["cosine, fine-tuned encoder"][0], calib_file)
    emit(lines, args.out)


def replay_lines(args: argparse.Namespace, report: list, folder: Path, calib_file: Path) -> list[str]:
    """`cache_qqp.py`'s replay with the fine-tuned cosine verifier, calibrated at precision 0.90 by the product's
    `calibrate_verifier` (its card then holds the threshold the cache serves at)."""
    import cache_qqp_parts as parts
    from cache_qqp import VectorCache

    from ragcli.train.cache_verifier import calibrate_verifier

    card = calibrate_verifier(folder, calib_file, target_precision=0.90)
    vc = VectorCache(args.work / "minilm_vectors.npz")
    ns = argparse.Namespace(seed=args.seed, replay_groups=args.replay_groups, kind="head")
    label = f"cosine, fine-tuned encoder, calibrated at 0.90 (threshold {card['threshold']:.4f})"
    rep = parts.replay_run(ns, report, vc, args.work, verifier_at=(label, folder))
    out = [
        "",
        f"Replay: {rep['questions']} report-part questions ({rep['asked_twice']} asked twice in other words, "
        f"{rep['new']} new), random order:",
        "",
        "| cache | LLM calls | calls avoided | exact | semantic | wrong answers served |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in rep["runs"].items():
        out.append(
            f"| {name} | {r['llm_calls']} | {r['calls_avoided']} | {r['exact_hits']} | {r['semantic_hits']} | "
            f"{r['wrong_answers_served']} |"
        )
    return out


if __name__ == "__main__":
    main()
