"""How far fine-tuning the encoder moves QQP's high-precision end: cosine of the packaged MiniLM, frozen
and fine-tuned by the verifier's own recipe (`ragcli.train.cache_verifier.finetune_encoder`,
OnlineContrastiveLoss).

    .venv/bin/python benchmarks/cache_finetune_cosine.py [--data ../shared/data] [--epochs 1] [--out F.md]

QQP (exact repeats removed) is split by connected component like `cache_qqp.py` (60 % tune / 40 % report, seed
0); the tune part is split again (70 % fine-tuning / 30 % calibration, by component). For each encoder:
- the threshold is the lowest cosine whose calibration precision is >= the target (0.90, 0.95), then precision
  and hit rate are read on every report pair (cache holds `text_a`, user asks `text_b`);
- and, in-sample on the report pairs, the largest hit rate whose precision is >= the target (>= 30 hits).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from trained_common import commit, emit, machine  # noqa: E402

from ragcli.eval.cache_pairs import LabeledPair, load_pairs, split_pairs  # noqa: E402

TARGETS = (0.90, 0.95)


def cosines(model_dir: str, pairs: list[LabeledPair]) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_dir, device="cpu")
    model.max_seq_length = 64
    a = model.encode([p.text_a for p in pairs], batch_size=128, normalize_embeddings=True)
    b = model.encode([p.text_b for p in pairs], batch_size=128, normalize_embeddings=True)
    return np.asarray((a * b).sum(axis=1))


def threshold_for(scores: np.ndarray, labels: np.ndarray, target: float, min_hits: int = 30) -> float | None:
    """The lowest score whose hits (score >= it) have precision >= target, with at least `min_hits` hits."""
    order = np.argsort(-scores)
    hits = np.arange(1, len(order) + 1)
    precision = np.cumsum(labels[order]) / hits
    ok = np.where((precision >= target) & (hits >= min_hits))[0]
    return float(scores[order][ok.max()]) if len(ok) else None


def read(scores: np.ndarray, labels: np.ndarray, threshold: float | None) -> str:
    if threshold is None:
        return "no threshold | - | 0.000"
    hit = scores >= threshold
    n = int(hit.sum())
    precision = float(labels[hit].mean()) if n else 1.0
    return f"{threshold:.4f} | {precision:.3f} ({n} hits) | {labels[hit].sum() / labels.sum():.3f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    os.environ.setdefault("RAGCLI_HOME", tempfile.mkdtemp(prefix="ragcli-cache-ft-"))
    from ragcli.resources import embedding_model_dir, offline_env
    from ragcli.train.cache_verifier import VerifierRecipe, finetune_encoder

    offline_env()
    pairs = load_pairs(args.data / "qqp" / "pairs.jsonl")
    tune, report = split_pairs(pairs, [0.6, 0.4], seed=0)
    fit, calib = split_pairs(tune, [0.7, 0.3], seed=0)
    cal_y = np.array([p.label for p in calib])
    rep_y = np.array([p.label for p in report])
    lines = [
        "# Fine-tuned encoder cosine on QQP (issue 10)",
        "",
        f"- date {datetime.now(UTC).isoformat(timespec='minutes')}, commit {commit()}, "
        f"{machine()}; command `python benchmarks/cache_finetune_cosine.py "
        f"{' '.join(sys.argv[1:])}`",
        f"- QQP {len(pairs)} pairs: fine-tuning {len(fit)}, calibration {len(calib)} "
        f"({int(cal_y.sum())} label 1), report {len(report)} ({int(rep_y.sum())} label 1)",
        "",
        "| encoder | target | threshold (calibration) | report precision | report hit rate | "
        "in-sample report hit rate at the target |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    encoders = [("packaged MiniLM, frozen", str(embedding_model_dir()), 0.0)]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        finetune_encoder(fit, Path(tmp) / "ft", VerifierRecipe(epochs=args.epochs))
        encoders.append(
            (
                f"fine-tuned, {args.epochs} epoch(s) on {len(fit)} pairs",
                str(Path(tmp) / "ft"),
                time.perf_counter() - t0,
            )
        )
        for name, path, seconds in encoders:
            cal_s, rep_s = cosines(path, calib), cosines(path, report)
            for target in TARGETS:
                best = threshold_for(rep_s, rep_y, target)
                in_sample = f"{rep_y[rep_s >= best].sum() / rep_y.sum():.3f}" if best is not None else "0.000"
                calibrated = read(rep_s, rep_y, threshold_for(cal_s, cal_y, target))
                lines.append(f"| {name} | {target:.2f} | {calibrated} | {in_sample} |")
            if seconds:
                lines.append(f"| (fine-tuning took {seconds:.0f} s) | | | | | |")
    emit(lines, args.out)


if __name__ == "__main__":
    main()
