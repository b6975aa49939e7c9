"""Does the local SmolLM2-135M's surprise at a prompt tell where Mixtral fails and GPT-4 does not?

    .venv/bin/python benchmarks/routing_lm_surprise.py [--data ../shared/data] [--benchmark gsm8k] [--max-tokens 256]

A check for issue 11's router features. The local tier is SmolLM2-135M (llama.cpp, the packaged GGUF), so scoring a
prompt with it costs no money at query time. Per prompt of `routing/outcomes.jsonl` it reads the model's
per-token negative log-likelihood (mean, max, standard deviation, 90th percentile, share above 5 nats) and, at the
prompt's last token, its distribution over the letters A-D (entropy and top probability; an MMLU prompt ends with
"Answer:"). Prompts over `--max-tokens` keep their first and last halves.

Reported: APGR of each feature alone (both signs), and 5-fold CV (5 shuffles) of a logistic regression on the log
prompt length with and without the features, label = the strong model is right where the weak one is wrong.
Prompt length is the best single signal a router has on GSM8K (APGR 0.61, results/routing.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from trained_common import commit, machine  # noqa: E402

from ragcli.eval.routing_metrics import gain_curve  # noqa: E402
from ragcli.resources import local_llm_gguf  # noqa: E402

FEATURES = ("mean", "max", "std", "p90", "over5", "letter_entropy", "letter_top")


def surprise(llm: object, prompt: str, max_tokens: int, letters: list[list[int]]) -> list[float]:
    """The FEATURES of one prompt under the loaded llama.cpp model."""
    toks = llm.tokenize(prompt.encode(), add_bos=True)  # type: ignore[attr-defined]
    if len(toks) > max_tokens:  # keep the start and the end (MMLU's options and "Answer:")
        toks = toks[: max_tokens // 2] + toks[-(max_tokens - max_tokens // 2) :]
    llm.reset()  # type: ignore[attr-defined]
    llm.eval(toks)  # type: ignore[attr-defined]
    logits = np.asarray(llm.scores[: len(toks)], dtype=np.float64)  # type: ignore[attr-defined]
    top = logits.max(1, keepdims=True)
    lse = top[:, 0] + np.log(np.exp(logits - top).sum(1))
    nll = lse[:-1] - logits[np.arange(len(toks) - 1), toks[1:]]
    last = logits[-1] - lse[-1]
    p = np.array([np.exp(last[ids]).sum() for ids in letters])
    p = p / p.sum()
    entropy = float(-(p * np.log(p + 1e-12)).sum())
    return [
        float(nll.mean()),
        float(nll.max()),
        float(nll.std()),
        float(np.percentile(nll, 90)),
        float((nll > 5).mean()),
        entropy,
        float(p.max()),
    ]


def cv_apgr(x: np.ndarray, weak: np.ndarray, strong: np.ndarray, shuffles: int = 5) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    y = ((weak == 0) & (strong == 1)).astype(int)
    out = []
    for seed in range(shuffles):
        scores = np.zeros(len(y))
        for tr, te in StratifiedKFold(5, shuffle=True, random_state=seed).split(x, y):
            scale = StandardScaler().fit(x[tr])
            model = LogisticRegression(C=0.1, max_iter=2000).fit(scale.transform(x[tr]), y[tr])
            scores[te] = model.decision_function(scale.transform(x[te]))
        out.append(gain_curve(scores, weak, strong).apgr())
    return float(np.mean(out)), float(np.std(out))


def main() -> None:
    import llama_cpp

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--benchmark", default="gsm8k", help="gsm8k, mmlu or all")
    ap.add_argument("--max-tokens", type=int, default=256)
    args = ap.parse_args()
    rows = [json.loads(line) for line in (args.data / "routing" / "outcomes.jsonl").open(encoding="utf-8")]
    rows = [r for r in rows if args.benchmark == "all" or r["benchmark"] == args.benchmark]
    llm = llama_cpp.Llama(
        model_path=str(local_llm_gguf()),
        logits_all=True,
        n_ctx=args.max_tokens + 8,
        n_batch=512,
        n_threads=2,
        verbose=False,
    )
    letters = [
        sorted(
            {llm.tokenize(f" {c}".encode(), add_bos=False)[-1], llm.tokenize(c.encode(), add_bos=False)[-1]}
        )
        for c in "ABCD"
    ]
    start = time.time()
    x = np.array([surprise(llm, r["prompt"], args.max_tokens, letters) for r in rows])
    seconds = time.time() - start
    weak = np.array([float(r["weak_correct"]) for r in rows])
    strong = np.array([float(r["strong_correct"]) for r in rows])
    length = np.log(np.array([len(r["prompt"]) for r in rows], dtype=np.float64))
    print(
        f"- commit {commit()}, {machine()}; {len(rows)} {args.benchmark} prompts scored in {seconds:.0f} s\n"
    )
    print("| order | APGR (higher first) | APGR (lower first) |\n| --- | ---: | ---: |")
    print(f"| prompt characters | {gain_curve(length, weak, strong).apgr():.3f} | |")
    for j, name in enumerate(FEATURES):
        up, down = gain_curve(x[:, j], weak, strong).apgr(), gain_curve(-x[:, j], weak, strong).apgr()
        print(f"| {name} | {up:.3f} | {down:.3f} |")
    print("\n| logistic regression (C 0.1), 5-fold CV x 5 shuffles | APGR |\n| --- | ---: |")
    for name, feats in (
        ("log prompt length", length[:, None]),
        ("the LM features", x),
        ("log prompt length + the LM features", np.c_[length, x]),
        ("log prompt length + mean and max NLL", np.c_[length, x[:, :2]]),
    ):
        mean, sd = cv_apgr(feats, weak, strong)
        print(f"| {name} | {mean:.3f} ± {sd:.3f} |")


if __name__ == "__main__":
    main()
