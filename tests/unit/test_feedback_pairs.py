"""Relevance labels from `ragcli feedback`: an answer's sources are recorded by chunk id, judged per source or
read from a good answer's citations, and written as the pairs file `ragcli train ... --from-feedback` trains on."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ragcli.cli import app
from ragcli.config import parse_config
from ragcli.cost.ledger import ledger_path
from ragcli.errors import InputError
from ragcli.generation.route_log import RouteLog
from ragcli.generation.scripted_llm import ScriptedLLM
from ragcli.ingest.plain_text_parser import PlainTextParser
from ragcli.pipelines.ingest_pipeline import ingest
from ragcli.pipelines.query_pipeline import answer
from ragcli.pipelines.stages import Stages
from ragcli.train.feedback_pairs import write_feedback_pairs

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "docs"


def _cfg(home: Path) -> dict[str, object]:
    return {
        "home": str(home),
        "collection": "fb",
        "store": {"type": "qdrant_edge"},
        "embedder": {"type": "hash", "dim": 64},
        "ingest": {"sparse": True},
        "retrieval": {"mode": "hybrid", "top_k": 3},
        "packing": {"min_relative_score": None},
        "llm": {"type": "scripted"},
    }


def _answered(home: Path) -> tuple[list[str], list[list[str]]]:
    """Ingest the samples and answer three questions (the first answer cites [1], the others [2])."""
    cfg = parse_config(_cfg(home))
    llm = ScriptedLLM(["The limit is 250 euros [1].", "See [2].", "See [2]."])
    stages = Stages.from_config(cfg, parser=PlainTextParser(), tiers=[llm])
    try:
        assert not ingest(sorted(SAMPLES.glob("*.md")), stages).failed
        answers = [
            answer(q, stages)
            for q in ("What is the hotel limit in Paris?", "How long must passwords be?", "Who is my mentor?")
        ]
    finally:
        stages.close()
    assert all(len(a.citations) >= 2 for a in answers)
    return [a.query_id for a in answers], [[c.chunk_id for c in a.citations] for a in answers]


def test_feedback_labels_become_training_pairs(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (q1, q2, q3), sources = _answered(home)
    cfg = parse_config(_cfg(home))
    log = RouteLog(ledger_path(cfg))
    with pytest.raises(InputError, match="no relevance labels from feedback"):
        write_feedback_pairs(cfg)

    log.add_feedback(q1, "good")  # its cited source [1] counts as relevant
    log.add_feedback(q2, "bad", relevant=[2], irrelevant=[1])
    log.add_feedback(q3, "bad")  # says nothing about the sources: the model may be at fault
    with pytest.raises(InputError, match=r"has no source\(s\) \[9\]: its sources are 1, 2"):
        log.add_feedback(q1, "good", relevant=[9])
    with pytest.raises(InputError, match="both --relevant and --irrelevant"):
        log.add_feedback(q1, "good", relevant=[1], irrelevant=[1])

    made = write_feedback_pairs(cfg)
    rows = [json.loads(line) for line in made.path.read_text().splitlines()]
    assert (made.pairs, made.queries, made.positives, made.explicit, made.gone) == (3, 2, 2, 2, 0)
    stages = Stages.from_config(cfg)
    try:
        text = {c: ch.text for c, ch in stages.store.get_chunks([*sources[0], *sources[1]]).items()}
    finally:
        stages.close()
    assert rows == [
        {"query": "What is the hotel limit in Paris?", "passage": text[sources[0][0]], "label": 1},
        {"query": "How long must passwords be?", "passage": text[sources[1][0]], "label": 0},
        {"query": "How long must passwords be?", "passage": text[sources[1][1]], "label": 1},
    ]
    # the fusion's labels: per question, the chunks judged relevant (q3's bad verdict labels nothing)
    from ragcli.train.feedback_pairs import feedback_qrels

    queries, qrels = feedback_qrels(cfg)
    assert {queries[q]: {c for c, v in r.items() if v} for q, r in qrels.items()} == {
        "What is the hotel limit in Paris?": {sources[0][0]},
        "How long must passwords be?": {sources[1][1]},
    }
    # a later judgment of the same source wins
    log.add_feedback(q2, "good", irrelevant=[2])
    again = [json.loads(line) for line in write_feedback_pairs(cfg).path.read_text().splitlines()]
    assert [r["label"] for r in again if r["query"].startswith("How long")] == [0, 0]


def test_feedback_cli_and_train_from_feedback(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (q1, q2, q3), _ = _answered(home)
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(yaml.safe_dump(_cfg(home)))
    runner = CliRunner()
    # `ragcli query` prints the id that `ragcli feedback` takes
    asked = runner.invoke(app, ["query", "What is the hotel limit in Paris?", "-c", str(cfg_file)])
    assert asked.exit_code == 0, asked.output
    shown_id = re.search(r"· query\s+([0-9a-f]+)", asked.output)
    assert shown_id is not None, asked.output
    assert runner.invoke(app, ["feedback", shown_id.group(1), "bad", "-c", str(cfg_file)]).exit_code == 0
    ok = runner.invoke(
        app, ["feedback", q1, "good", "--relevant", "1", "--irrelevant", "2", "-c", str(cfg_file)]
    )
    assert ok.exit_code == 0 and "not relevant: [2]" in ok.output, ok.output
    bad = runner.invoke(app, ["feedback", q2, "good", "--relevant", "one", "-c", str(cfg_file)])
    assert bad.exit_code != 0 and "source numbers as printed in the answer" in bad.output
    for q in (q2, q3):
        assert (
            runner.invoke(app, ["feedback", q, "good", "--relevant", "2", "-c", str(cfg_file)]).exit_code == 0
        )
    both = runner.invoke(
        app, ["train", "fusion", "--from-feedback", "--pairs", "x.jsonl", "--name", "fb", "-c", str(cfg_file)]
    )
    assert both.exit_code != 0 and "one source of labels" in both.output
    other = runner.invoke(
        app,
        ["train", "fusion", "--from-feedback", "--name", "fb", "--collection", "other", "-c", str(cfg_file)],
    )
    assert other.exit_code != 0 and "collection 'other'" in other.output
    trained = runner.invoke(
        app, ["train", "fusion", "--from-feedback", "--name", "fb", "--holdout", "0", "-c", str(cfg_file)]
    )
    assert trained.exit_code == 0, trained.output
    # trained in the collection itself, on the judged chunks (not on a collection of the judged texts)
    assert "feedback: 3 questions with 3 sources judged relevant (4 judged)" in trained.output
    card = json.loads((home / "fusions" / "fb" / "ragcli_fusion.json").read_text())
    assert card["collection"] == "fb" and card["data"]["labels"] == "feedback"
    assert card["data"]["train_queries"] == 3 and ", 3 relevant)" in trained.output  # chunk-level labels


def test_cli_bad_verdict_drops_the_cached_answer(tmp_path: Path) -> None:
    home = tmp_path / "home"
    cfg_data = {**_cfg(home), "cache": {"enabled": True, "semantic": "off"}}
    llm = ScriptedLLM(["The limit is 250 euros [1]."])
    stages = Stages.from_config(parse_config(cfg_data), parser=PlainTextParser(), tiers=[llm])
    try:
        assert not ingest([SAMPLES / "travel-policy.md"], stages).failed
        first = answer("What is the hotel limit in Paris?", stages)
        served = answer("What is the hotel limit in Paris?", stages)
    finally:
        stages.close()
    assert len(llm.prompts) == 1 and any(t.stage == "cache" for t in served.trace)
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg_data))
    good = CliRunner().invoke(app, ["feedback", first.query_id, "good", "-c", str(cfg_file)])
    assert good.exit_code == 0 and "dropped" not in good.output
    bad = CliRunner().invoke(app, ["feedback", served.query_id, "bad", "-c", str(cfg_file)])
    assert bad.exit_code == 0 and "dropped 1 answer-cache entry" in bad.output, bad.output
    stages = Stages.from_config(parse_config(cfg_data), tiers=[llm])
    try:
        again = answer("What is the hotel limit in Paris?", stages)
    finally:
        stages.close()
    assert len(llm.prompts) == 2 and not any(t.stage == "cache" for t in again.trace)
    # the judged hit counts in the precision by tier; as a labeled pair for `eval cache` / `train cache-verifier`
    # it is left out: the same question on both sides, and the verdict was on the answer, not on the match
    pairs_file = tmp_path / "judged.jsonl"
    judged = CliRunner().invoke(app, ["cache", "judged", "--out", str(pairs_file), "-c", str(cfg_file)])
    assert judged.exit_code == 0 and "exact: 0 of 1 judged hits good" in judged.output, judged.output
    assert "skipped 1 judged exact repeat" in " ".join(judged.output.split())
    assert pairs_file.read_text() == ""
