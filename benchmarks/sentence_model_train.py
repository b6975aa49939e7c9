"""Train the sentence model that `packing.sentence_model` names, on questions with known answers; measure it.

For HotpotQA and NQ (`../shared/data`), the real pipeline of `--spec` retrieves once per question (as in
`qa_adaptive_calibrate.py`); the real packer then lists every sentence it would weigh, with the features of
`ragcli/generation/sentence_model.py`, and a sentence is labelled 1 when it holds a gold answer (yes/no questions
and questions whose retrieved chunks hold no answer are left out). Only the **tune halves** are trained on:

1. 5-fold cross-validation over the tune questions (folds by question, both sets pooled): answer in context and
   cl100k prompt tokens of the held-out folds with the model against the lexical ranking alone, per budget;
2. the model fitted on every tune question, written as a card (default: the packaged `qa-sentences`);
3. that card measured once on the **report halves**, beside the lexical ranking, at the same budgets.

Run: `RAGCLI_HOME=... .venv/bin/python benchmarks/sentence_model_train.py [--spec NAME=PRESET,k=v] [--out DIR]
[--json F]`
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from qa_adaptive_calibrate import harness, retrieve_all, sweep  # noqa: E402

from ragcli.eval.qa_eval import is_yes_no  # noqa: E402
from ragcli.generation.sentence_model import FEATURES, PACKAGED_DIR, SentenceModel  # noqa: E402
from ragcli.generation.token_budget_packer import TokenBudgetPacker  # noqa: E402
from ragcli.train.sentence_model_training import DEFAULT_L2, fit_sentence_model, labeled_rows  # noqa: E402

log = logging.getLogger("sentence_model_train")
SPEC = (
    "lean=lean,ingest.sparse=true,retrieval.mode=hybrid,retrieval.fusion=packaged:minilm-scifact,"
    "packing.sentence_model=null"
)


def answerable(item: Any) -> bool:
    """A question with an answer that is not yes/no: the ones answer-in-context is scored on."""
    return bool(item.answers) and not is_yes_no(item.answers)


def labelled(run: dict[str, Any], idx: list[int], packer: TokenBudgetPacker, top_k: int) -> list[Any]:
    """(features, labels) per question of `idx` with an answer that is not yes/no (`ragcli train
    sentence-model`'s labeling; questions without a positive sentence are left out by the fit)."""
    return [
        labeled_rows(packer, run["items"][i].question, run["hits"][i][:top_k], run["items"][i].answers)
        for i in idx
        if answerable(run["items"][i])
    ]


def fit(questions: list[Any], l2: float, name: str) -> SentenceModel:
    return fit_sentence_model(questions, name, l2=l2, floor=None)


def subset(run: dict[str, Any], idx: list[int], name: str) -> dict[str, Any]:
    return {
        **run,
        "items": [run["items"][i] for i in idx],
        "hits": [run["hits"][i] for i in idx],
        "name": name,
    }


def measure(
    runs: dict[str, dict[str, Any]],
    idx: dict[str, list[int]],
    model: SentenceModel | None,
    budgets: list[int],
    count: Any,
) -> dict[str, dict[int, tuple[float, float, int]]]:
    """Answer in context, mean tokens and answerable questions per set and budget, for the questions `idx`."""
    out: dict[str, dict[int, tuple[float, float, int]]] = {}
    for set_name, run in runs.items():
        sub = subset(run, idx[set_name], "model" if model else "lexical")
        cfg = run["cfg"]
        grid = [
            {
                "select": True,
                "rel": None,
                "budget": b,
                "ratio": None,
                "top_k": cfg.retrieval.top_k,
                "packer": TokenBudgetPacker(
                    run["stages"].llm.count_tokens,
                    select_sentences=True,
                    order=cfg.packing.order,
                    sentence_model=model,
                ),
            }
            for b in budgets
        ]
        n = sum(answerable(run["items"][i]) for i in idx[set_name])
        out[set_name] = {r["budget"]: (r["aic"], r["tokens"], n) for r in sweep(sub, grid, count)}
    return out


def pooled(
    parts: list[dict[str, dict[int, tuple[float, float, int]]]],
) -> dict[str, dict[int, tuple[float, float]]]:
    """Fold results pooled: answer in context weighted by answerable questions, tokens by folds."""
    out: dict[str, dict[int, tuple[float, float]]] = {}
    for set_name in parts[0]:
        out[set_name] = {}
        for b in parts[0][set_name]:
            rows = [p[set_name][b] for p in parts]
            n = sum(r[2] for r in rows) or 1
            out[set_name][b] = (sum(r[0] * r[2] for r in rows) / n, sum(r[1] for r in rows) / len(rows))
    return out


def _floor_name(floor: float | None) -> str:
    return "model, no floor" if floor is None else f"model, floor {floor:+.1f}"


def choose_floor(
    cv: dict[str, dict[str, dict[int, tuple[float, float]]]], floors: list[float | None], budget: int
) -> float | None:
    """The floor with the fewest tokens at `budget` whose answer-in-context is within one point of no floor's on
    every set (no floor when none is)."""
    free = cv[_floor_name(None)]
    ok = [
        f for f in floors if all(cv[_floor_name(f)][s][budget][0] >= free[s][budget][0] - 0.01 for s in free)
    ]
    return min(ok or [None], key=lambda f: sum(cv[_floor_name(f)][s][budget][1] for s in free))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument(
        "--spec", default=SPEC, help="NAME=PRESET,key=value,... whose retrieval and packer are used"
    )
    ap.add_argument("--nq-limit", type=int, default=300)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--l2", type=float, default=DEFAULT_L2, help="L2 strength of the logistic regression")
    ap.add_argument("--budgets", nargs="+", type=int, default=[128, 256])
    ap.add_argument(
        "--floors",
        nargs="+",
        default=["none", "-1", "-0.5", "0", "0.5", "1"],
        help="logit floors tried for sentences that share no word with the question (`none`: no floor)",
    )
    ap.add_argument("--choose-budget", type=int, default=256, help="the budget the floor is chosen at")
    ap.add_argument("--name", default="qa-sentences")
    ap.add_argument("--out", default=None, help="card folder (default: the packaged qa-sentences)")
    ap.add_argument("--json", default="/tmp/sentence_model_train.json")
    args = ap.parse_args(argv)
    count, cache = harness()
    ns = argparse.Namespace(data=args.data, limit=None, nq_limit=args.nq_limit, split="all")
    runs = {s: retrieve_all(s, args.spec, ns, cache) for s in ("hotpotqa", "nq")}
    tune = {s: list(range(len(r["items"]) // 2)) for s, r in runs.items()}
    report = {s: list(range(len(r["items"]) // 2, len(r["items"]))) for s, r in runs.items()}
    feats = {
        s: TokenBudgetPacker(
            r["stages"].llm.count_tokens, select_sentences=True, order=r["cfg"].packing.order
        )
        for s, r in runs.items()
    }
    top_k = {s: r["cfg"].retrieval.top_k for s, r in runs.items()}

    # 1. cross-validation on the tune halves, for each floor (what a sentence sharing no word with the question
    #    needs from the model to be packed)
    floors = [None if f == "none" else float(f) for f in args.floors]
    k = args.folds
    cv_parts: dict[str, list[Any]] = {"lexical": [], **{_floor_name(f): [] for f in floors}}
    for fold in range(k):
        train = [
            q
            for s, r in runs.items()
            for q in labelled(r, [i for i in tune[s] if i % k != fold], feats[s], top_k[s])
        ]
        held = {s: [i for i in tune[s] if i % k == fold] for s in runs}
        model = fit(train, args.l2, args.name)
        for f in floors:
            cv_parts[_floor_name(f)].append(measure(runs, held, replace(model, floor=f), args.budgets, count))
        cv_parts["lexical"].append(measure(runs, held, None, args.budgets, count))
    cv = {name: pooled(parts) for name, parts in cv_parts.items()}
    floor = choose_floor(cv, floors, args.choose_budget)
    log.info("floor chosen on the tune halves: %s", _floor_name(floor))

    # 2. fit on every tune question and save the card
    train = [q for s, r in runs.items() for q in labelled(r, tune[s], feats[s], top_k[s])]
    model = replace(fit(train, args.l2, args.name), floor=floor)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    model.card.update(
        {
            "trained_on": "HotpotQA + NQ tune halves (qa_adaptive_calibrate.py's first halves; nq first "
            f"{args.nq_limit}), label = the sentence holds a gold answer",
            "spec": args.spec,
            "l2": args.l2,
            "floor_rule": f"the floor with the fewest CV tokens at budget {args.choose_budget} within one point "
            "of no floor's answer-in-context on each set",
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "commit": commit.strip(),
        }
    )
    folder = Path(args.out) if args.out else PACKAGED_DIR / args.name
    path = model.save(folder)
    log.info("saved %s (%d sentences, %d questions)", path, model.card["sentences"], model.card["questions"])

    # 3. the saved card on the report halves (and without its floor)
    rep = {
        "lexical": measure(runs, report, None, args.budgets, count),
        "model, no floor": measure(runs, report, replace(model, floor=None), args.budgets, count),
        "model": measure(runs, report, model, args.budgets, count),
    }
    result = {
        "spec": args.spec,
        "features": list(FEATURES),
        "weights": dict(zip(FEATURES, model.weights, strict=True)),
        "floor": floor,
        "cv_tune": cv,
        "report": {m: {s: {b: v[:2] for b, v in d.items()} for s, d in r.items()} for m, r in rep.items()},
    }
    Path(args.json).write_text(json.dumps(result, indent=1))
    for label, table in (("cv on tune halves", cv), ("report halves", result["report"])):
        print(f"\n{label}: answer in context / cl100k tokens")
        for s in runs:
            for b in args.budgets:
                cells = "   ".join(f"{m} {v[s][b][0]:.3f} / {v[s][b][1]:.0f}" for m, v in table.items())
                print(f"  {s:9s} budget {b:4d}: {cells}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
