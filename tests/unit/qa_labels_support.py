"""Questions with answers about `samples/docs`, for the tests of the `ragcli train ... --questions` commands."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import Result
from typer.testing import CliRunner

from ragcli.cli import app
from ragcli.config import parse_config
from ragcli.ingest.plain_text_parser import PlainTextParser
from ragcli.pipelines.ingest_pipeline import ingest
from ragcli.pipelines.stages import Stages

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "docs"
QUESTIONS = [
    ("How long must passwords be?", "16 characters"),
    ("Where do I report a lost laptop?", "security@northwind.example"),
    ("How fast does the on-call security engineer answer?", "15 minutes"),
    ("When do laptops lock?", "five minutes"),
    ("When do security updates install?", "Tuesday"),
    ("What is the hotel limit in Paris?", "250 euros"),
    ("How much are meals reimbursed per day?", "60 euros"),
    ("When must expense reports be submitted?", "30 days"),
    ("How many hardware security keys does each employee get?", "two keys"),
    ("Which receipts must be kept?", "15 euros"),
]


def ingest_policies(cfg: dict[str, object]) -> None:
    """The travel policy and the security handbook, ingested into the config's collection."""
    stages = Stages.from_config(parse_config(cfg), parser=PlainTextParser())
    try:
        assert not ingest([SAMPLES / "travel-policy.md", SAMPLES / "security-handbook.md"], stages).failed
    finally:
        stages.close()


def run_train(tmp_path: Path, cfg: dict[str, object], command: str, *extra: str) -> Result:
    """`ragcli train COMMAND --questions qa.jsonl --name mine --holdout 0.3 -c cfg.yaml` after ingesting the
    policies; the questions file is `tmp_path / "qa.jsonl"`."""
    ingest_policies(cfg)
    questions = tmp_path / "qa.jsonl"
    questions.write_text("".join(json.dumps({"question": q, "answers": [a]}) + "\n" for q, a in QUESTIONS))
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg))
    args = ["train", command, "--questions", str(questions), "--name", "mine", "--holdout", "0.3"]
    return CliRunner().invoke(app, [*args, "-c", str(cfg_file), *extra])
