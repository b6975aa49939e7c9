"""How noisy are QQP's labels where no model is needed? Pairs that are the same question up to case, punctuation,
articles and a plural or tense ending, and how many of them QQP labels "not duplicate".

This bounds what any cache verifier can show on QQP at high precision: a pair no reader would tell apart still
counts as a wrong hit when its label is 0. Same split as `cache_qqp.py` (connected components, seed 0, 60/40).

    .venv/bin/python benchmarks/cache_qqp_label_noise.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ragcli.eval.cache_pairs import load_pairs, split_pairs  # noqa: E402

_PUNCT = set("?.,!\"'`“”‘’;:()")
_ARTICLES = frozenset({"the", "a", "an"})


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def near_exact_key(text: str) -> tuple[str, ...]:
    """Lowercased words and symbol runs (punctuation dropped), articles dropped, a crude suffix stem."""
    tokens = [t for t in re.findall(r"\w+|[^\w\s]+", text.lower()) if not set(t) <= _PUNCT]
    return tuple(_stem(t) for t in tokens if t not in _ARTICLES)


def wilson_low(k: int, n: int, z: float = 1.96) -> float:
    if n == 0:
        return 0.0
    p = k / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--examples", type=int, default=6)
    args = ap.parse_args()
    pairs = load_pairs(args.data / "qqp" / "pairs.jsonl")
    tune, report = split_pairs(pairs, [0.6, 0.4], seed=0)
    print("| part | pairs | label 1 | near-exact pairs | of them label 1 | precision [95 % low] | hit rate |")
    print("| --- | ---: | ---: | ---: | ---: | --- | ---: |")
    negatives = []
    for name, part in (("tune", tune), ("report", report)):
        positives = sum(p.label == 1 for p in part)
        hits = [p for p in part if near_exact_key(p.text_a) == near_exact_key(p.text_b)]
        good = sum(p.label == 1 for p in hits)
        negatives += [p for p in hits if p.label == 0]
        print(
            f"| {name} | {len(part)} | {positives} | {len(hits)} | {good} | "
            f"{good / max(len(hits), 1):.3f} [{wilson_low(good, len(hits)):.3f}] | {good / positives:.3f} |"
        )
    print("\nLabelled 0 (not duplicate):")
    for p in negatives[: args.examples]:
        print(f"- {p.text_a} / {p.text_b}")


if __name__ == "__main__":
    main()
