"""Train a score fusion on a QA set's TUNE half (its questions' supporting paragraphs as relevance labels), with
`ragcli train fusion`, so `qa_adaptive_calibrate.py` can sweep a relevance cut-off on the fused probabilities.

    .venv/bin/python benchmarks/qa_fusion_train.py --set hotpotqa|nq [--nq-limit 300] [--name qa-hotpotqa]

Writes the pooled paragraphs, the tune-half questions and their supporting paragraphs as BEIR files under a
temporary folder and runs `ragcli train fusion` on them with the `local` preset (hybrid) in `RAGCLI_HOME`, the
home the QA harness uses. The tune half is the first half of the questions, as `qa_adaptive_calibrate.py` cuts
it; the report half is never read here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from qa_baselines import SETS, load_split, tune_half_args  # noqa: E402


def main() -> None:
    args = tune_half_args(__doc__.splitlines()[0], "qa")

    ds, tune = load_split(Path(args.data) / SETS[args.set], args.set, args.limit, args.nq_limit, "tune")
    folder = Path(tempfile.mkdtemp(prefix=f"qa-fusion-{args.set}-"))
    with (folder / "corpus.jsonl").open("w") as fh:
        for pid, p in ds.paragraphs.items():
            fh.write(json.dumps({"_id": pid, "title": p.title, "text": p.text}) + "\n")
    with (folder / "queries.jsonl").open("w") as fh:
        for q in tune:
            fh.write(json.dumps({"_id": q.id, "text": q.question}) + "\n")
    with (folder / "qrels.tsv").open("w") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        for q in tune:
            for s in q.supporting:
                fh.write(f"{q.id}\t{s}\t1\n")
    cmd = [
        str(Path(sys.executable).with_name("ragcli")),
        "train",
        "fusion",
        "--corpus",
        str(folder / "corpus.jsonl"),
        "--queries",
        str(folder / "queries.jsonl"),
        "--qrels",
        str(folder / "qrels.tsv"),
        "--name",
        args.name,
        "-c",
        "local",
    ]
    print(" ".join(cmd), flush=True)
    raise SystemExit(subprocess.run(cmd, check=False).returncode)


if __name__ == "__main__":
    main()
