"""Does the length of a GSM8K problem's solution predict where Mixtral fails and GPT-4 does not?

    .venv/bin/python benchmarks/routing_gsm8k_solution_length.py [--data ../shared/data]

An upper-bound check for issue 11's GSM8K goal: RouteLLM's GSM8K prompts (`routing/outcomes.jsonl`) are GSM8K's
test questions, whose gold solutions (`gsm8k/test.jsonl`) no router can see. Each prompt is scored by its gold
solution's steps (`<<...>>` calculations), lines or characters, and, for comparison, by the question's own
characters (what a router can read); APGR of each order (`ragcli.eval.routing_metrics`, ties averaged).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from trained_common import commit, machine  # noqa: E402

from ragcli.eval.routing_metrics import gain_curve  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = ap.parse_args()
    solutions = {}
    for line in (args.data / "gsm8k" / "test.jsonl").open(encoding="utf-8"):
        row = json.loads(line)
        solutions[row["question"].strip()] = row["answer"]
    prompts = [json.loads(line) for line in (args.data / "routing" / "outcomes.jsonl").open(encoding="utf-8")]
    gsm = [p for p in prompts if p["benchmark"] == "gsm8k" and p["prompt"].strip() in solutions]
    weak = [float(p["weak_correct"]) for p in gsm]
    strong = [float(p["strong_correct"]) for p in gsm]
    gold = [solutions[p["prompt"].strip()] for p in gsm]
    orders = {
        "gold solution: calculation steps (oracle)": [g.count("<<") for g in gold],
        "gold solution: lines (oracle)": [g.count("\n") for g in gold],
        "gold solution: characters (oracle)": [len(g) for g in gold],
        "question: characters (a router can read it)": [len(p["prompt"]) for p in gsm],
    }
    print(f"- commit {commit()}, {machine()}; {len(gsm)} GSM8K prompts matched to their gold solutions\n")
    print("| order | APGR |\n| --- | ---: |")
    for name, scores in orders.items():
        print(f"| {name} | {gain_curve(scores, weak, strong).apgr():.3f} |")


if __name__ == "__main__":
    main()
