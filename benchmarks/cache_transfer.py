"""Transfer: cache verifiers trained and calibrated on QQP, read without retraining on another paraphrase set.

    .venv/bin/python benchmarks/cache_transfer.py --work W --pairs FILE [--format mrpc|jsonl] [--epochs 1]

Issue 10 asks whether a verifier's precision holds off the data it was calibrated on. The verifiers are
`cache_aligned.py`'s (the same QQP split, the same training): the `aligned` kind and the cosine of the same encoder,
for the packaged MiniLM frozen and fine-tuned for `--epochs` on QQP; a `--work` folder where they were trained
already is reused (`--retrain` to train again). Each is read at the threshold calibrated on QQP, on QQP's report
pairs and on the other set's pairs, with no change. Beside them, GPTCache's default recipe (the frozen MiniLM's
cosine >= 0.8).

`--pairs` is the other set: the Microsoft Research Paraphrase Corpus as distributed (`msr_paraphrase_test.txt`:
`Quality`, two ids, `#1 String`, `#2 String`, tab-separated; `--format mrpc`), the STS benchmark's
`sts-test.csv` (genre, file, year, id, score 0-5, the two sentences, tab-separated; `--format stsb`: a pair is
label 1 when its score is at least `--score-cut`, 4.0 by default, "mostly equivalent"), or a JSONL of `text_a,
text_b, label` (`--format jsonl`, what `ragcli eval cache --pairs` reads). Pairs whose normalised texts are equal
are left out, as on QQP. The cache holds `text_a` and is asked `text_b`.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from cache_aligned import AT_HIT_RATE, IN_SAMPLE, precision_at_hit_rate, qqp_split, train_both  # noqa: E402
from trained_common import commit, emit, loadavg, machine  # noqa: E402

GPTCACHE_DEFAULT = 0.8
"""GPTCache's default `similarity_threshold` (cosine)."""


def mrpc_to_jsonl(tsv: Path, out: Path) -> Path:
    """MRPC's distributed TSV as the JSONL of `text_a, text_b, label` that `load_pairs` reads."""
    with tsv.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    need = {"Quality", "#1 String", "#2 String"}
    if not rows or not need <= set(rows[0]):
        raise SystemExit(f"{tsv}: not MRPC's TSV (columns {sorted(need)} expected); use --format jsonl")
    out.write_text(
        "".join(
            json.dumps({"text_a": r["#1 String"], "text_b": r["#2 String"], "label": int(r["Quality"])})
            + "\n"
            for r in rows
        ),
        encoding="utf-8",
    )
    return out


def stsb_to_jsonl(tsv: Path, out: Path, cut: float) -> Path:
    """STS-B's distributed TSV as labeled pairs: label 1 when the pair's score is at least `cut`."""
    rows = []
    for n, line in enumerate(tsv.read_text(encoding="utf-8").splitlines()):
        fields = line.split("\t")
        if n == 0 and fields[:1] == ["source"]:
            continue  # a header line
        if len(fields) < 7:
            raise SystemExit(f"{tsv}:{n + 1}: {len(fields)} tab-separated fields, STS-B's TSV has 7")
        score = float(fields[4])
        rows.append({"text_a": fields[5], "text_b": fields[6], "label": int(score >= cut), "score": score})
    out.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--work", type=Path, required=True, help="a scratch folder (verifiers, pair files)")
    ap.add_argument("--pairs", type=Path, required=True, help="the other paraphrase set")
    ap.add_argument("--format", choices=("mrpc", "stsb", "jsonl"), default="mrpc")
    ap.add_argument("--score-cut", type=float, default=4.0, help="--format stsb: label 1 from this score")
    ap.add_argument(
        "--epochs", type=int, default=1, help="fine-tuning epochs of the second encoder (0: none)"
    )
    ap.add_argument("--target", type=float, default=0.90, help="the precision calibrated to on QQP")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--retrain", action="store_true", help="train the verifiers even if --work has them")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    from ragcli.resources import offline_env

    offline_env()
    from ragcli.eval.cache_eval import score_pairs
    from ragcli.eval.cache_pairs import load_pairs
    from ragcli.generation.cache_calibration import best_at_precision, measure_at
    from ragcli.generation.cache_verifier import open_verifier

    t_start, load_before = time.time(), loadavg()
    args.work.mkdir(parents=True, exist_ok=True)
    tune, report = qqp_split(Path(args.data), args.seed)
    tune_file = args.work / "tune_pairs.jsonl"
    tune_file.write_text("".join(json.dumps(asdict(p)) + "\n" for p in tune))
    home = args.work / "home"
    other_file = {
        "jsonl": lambda: args.pairs,
        "mrpc": lambda: mrpc_to_jsonl(args.pairs, args.work / "other.jsonl"),
        "stsb": lambda: stsb_to_jsonl(args.pairs, args.work / "other.jsonl", args.score_cut),
    }[args.format]()
    other = load_pairs(other_file)
    y_other = np.array([p.label for p in other])
    y_qqp = np.array([p.label for p in report])
    lines = [
        f"- date {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}, commit {commit()}, machine {machine()}",
        f"- command: `python benchmarks/cache_transfer.py --pairs {args.pairs.name} --format {args.format} "
        f"--epochs {args.epochs} --target {args.target}"
        + (f" --score-cut {args.score_cut}" if args.format == "stsb" else "")
        + (f" --seed {args.seed}" if args.seed else "")
        + "`",
        f"- other set: {len(other)} pairs ({int(y_other.sum())} label 1) after exact repeats are left out; "
        f"QQP report pairs: {len(report)} ({int(y_qqp.sum())} label 1); QQP tune pairs: {len(tune)}",
        "",
        f"| verifier | threshold (QQP, {args.target}) | QQP report: precision / hit rate | other set: hits "
        "(wrong) | other set: precision [95 % interval] | other set: hit rate | other set in-sample hit rate at "
        "0.90 / 0.95 | other set: precision at hit rate "
        + " / ".join(f"{h:.2f}" for h in AT_HIT_RATE)
        + " |",
        "| --- | ---: | --- | ---: | --- | ---: | --- | --- |",
    ]

    def row(label: str, thr: float, s_qqp: np.ndarray, s_other: np.ndarray) -> str:
        best = [best_at_precision(s_other, y_other, t) for t in IN_SAMPLE]
        in_sample = " / ".join(f"{p.hit_rate:.3f}" if p is not None and p.hits >= 20 else "0" for p in best)
        at_rate = " / ".join(f"{precision_at_hit_rate(s_other, y_other, h):.3f}" for h in AT_HIT_RATE)
        if not np.isfinite(thr):
            return f"| {label} | none | - | 0 | - | 0 | {in_sample} | {at_rate} |"
        q, o = measure_at(s_qqp, y_qqp, thr), measure_at(s_other, y_other, thr)
        return (
            f"| {label} | {thr:.4f} | {q.precision:.3f} / {q.hit_rate:.3f} | {o.hits} ({o.hits - o.correct}) | "
            f"{o.precision:.3f} [{o.lower:.3f}, {o.upper:.3f}] | {o.hit_rate:.3f} | {in_sample} | {at_rate} |"
        )

    for epochs in sorted({0, args.epochs}):
        encoder = "packaged, frozen" if epochs == 0 else f"fine-tuned {epochs} epoch(s) on QQP"
        folders = [home / "verifiers" / f"{kind}-e{epochs}" for kind in ("cosine", "aligned")]
        if args.retrain or not all((f / "card.json").is_file() for f in folders):
            train_both(tune_file, home, epochs, args.target, args.seed, len(tune))
        for kind, folder in zip(("cosine", "aligned"), folders, strict=True):
            v = open_verifier(folder)
            s_qqp, s_other = score_pairs(v, report), score_pairs(v, other)  # any kind: it reads what it needs
            lines.append(row(f"{kind}, {encoder}", v.threshold, s_qqp, s_other))
            print(lines[-1], flush=True)
            if kind == "cosine" and epochs == 0:
                gpt = row("GPTCache default: frozen MiniLM cosine >= 0.8", GPTCACHE_DEFAULT, s_qqp, s_other)
    lines += [
        gpt,
        "",
        f"- load average before / after: {load_before} / {loadavg()}; whole run {time.time() - t_start:.0f} s",
    ]
    emit(lines, args.out)


if __name__ == "__main__":
    main()
