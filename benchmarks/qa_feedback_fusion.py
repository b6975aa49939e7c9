"""Feedback as labels, end to end: answer a QA set's TUNE half through the real query path (retrieval and
packing, no LLM), judge each answer's numbered sources the way a user would (`ragcli feedback QID good|bad
--relevant .. --irrelevant ..`, with the question's supporting paragraphs as the truth), then run
`ragcli train fusion --from-feedback` so `qa_adaptive_calibrate.py --split report` can measure the fusion.

    RAGCLI_HOME=/tmp/qa12/home .venv/bin/python benchmarks/qa_feedback_fusion.py --set hotpotqa|nq

Only the sources an answer showed are judged (the preset's top 8 after its relevance cut), so the labels are what
a user of the `local` preset could give, not the full qrels `qa_fusion_train.py` uses. The report half is never
read here. The simulated queries, routes and judgments go into the ledger of `RAGCLI_HOME`.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from qa_baselines import SETS, load_split, tune_half_args  # noqa: E402


def main() -> None:
    args = tune_half_args(__doc__.splitlines()[0], "fb")
    from ragcli.config import load_config
    from ragcli.eval.qa_index import collection_name, index_dataset
    from ragcli.pipelines.query_pipeline import QueryOptions, new_recorder, prepare, retrieve
    from ragcli.pipelines.stages import Stages
    from ragcli.resources import offline_env, ragcli_home

    offline_env()
    ds, tune = load_split(Path(args.data) / SETS[args.set], args.set, args.limit, args.nq_limit, "tune")
    base = load_config("local")
    cfg = base.model_copy(update={"collection": collection_name(ds, base), "home": str(ragcli_home())})
    stages = Stages.from_config(cfg)
    judged = relevant_total = 0
    try:
        index = index_dataset(ds, stages)
        log = stages.route_log
        opts = QueryOptions(no_answer=True)
        for item in tune:
            rec = new_recorder(stages, opts)
            got = retrieve(item.question, stages, opts, rec)
            shown = prepare(item.question, got, stages, opts, rec).context.citations
            qid = f"sim-{args.set}-{item.id}"
            log.record_route(qid, item.question, "simulated", "simulated", "qa_feedback_fusion.py")
            log.record_sources(qid, cfg.collection, [(c.number, c.chunk_id) for c in shown], "")
            good = [c.number for c in shown if index.chunk_paragraph.get(c.chunk_id) in item.supporting]
            bad = [c.number for c in shown if c.number not in good]
            log.add_feedback(qid, "good" if good else "bad", relevant=good, irrelevant=bad)
            judged += len(shown)
            relevant_total += len(good)
    finally:
        stages.close()
    print(
        f"{len(tune)} tune questions answered (no LLM); {judged} sources judged, {relevant_total} relevant",
        flush=True,
    )
    cfg_file = Path(tempfile.mkdtemp(prefix="qa-feedback-")) / "config.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg.model_dump(mode="json")), encoding="utf-8")
    cmd = [
        str(Path(sys.executable).with_name("ragcli")),
        "train",
        "fusion",
        "--from-feedback",
        "--name",
        args.name,
        "-c",
        str(cfg_file),
    ]
    print(" ".join(cmd), flush=True)
    raise SystemExit(subprocess.run(cmd, check=False).returncode)


if __name__ == "__main__":
    main()
