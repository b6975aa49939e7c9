"""Batch mode against a local fake of OpenAI's Files and Batch endpoints, through the real `openai` SDK: API-tier
questions go in one batch at the batch price, local-tier ones are answered in-process, and a run interrupted
while the batch is in progress resumes without submitting (or billing) again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("openai")

from ragcli.config import parse_config
from ragcli.errors import InputError
from ragcli.generation.scripted_llm import ScriptedLLM
from ragcli.ingest.plain_text_parser import PlainTextParser
from ragcli.pipelines.batch_pipeline import read_questions, run_batch
from ragcli.pipelines.ingest_pipeline import ingest
from ragcli.pipelines.stages import Stages
from tests.unit.fake_openai_batch_server import FakeBatchServer

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "docs"


def _stages(tmp_path: Path, base_url: str) -> Stages:
    cfg = parse_config(
        {
            "home": str(tmp_path),
            "collection": "t",
            "store": {"type": "qdrant", "location": ":memory:"},
            "embedder": {"type": "hash", "dim": 64},
            "tiers": [
                {"type": "scripted"},
                {"type": "openai", "model": "gpt-4o-mini", "base_url": base_url, "api_key_env": None},
            ],
            "router": {"rules": [{"tier": 1, "question_matches": "hotel"}]},
            "cost": {"use_litellm_prices": False},
        }
    )
    local = ScriptedLLM(["Local answer [1]."])
    from ragcli.generation.build import build_llm

    api = build_llm(cfg.model_copy(update={"llm": cfg.tiers[1]}), Stages.from_config(cfg).prices)
    s = Stages.from_config(cfg, parser=PlainTextParser(), tiers=[local, api])
    assert not ingest([SAMPLES / "travel-policy.md"], s).failed
    return s


def _questions(tmp_path: Path) -> Path:
    q = tmp_path / "q.jsonl"
    q.write_text(
        "\n".join(
            json.dumps(x)
            for x in (
                {"id": "a", "question": "What is the hotel limit in Paris?"},
                {"id": "b", "question": "Which hotel class may staff book?"},
                {"id": "c", "question": "How are trains booked?"},
            )
        )
        + "\n"
    )
    return q


def test_batch_resumes_without_paying_twice(tmp_path: Path) -> None:
    with FakeBatchServer() as server:
        server.api.polls_to_complete = 3
        s = _stages(tmp_path, server.base_url)
        out = tmp_path / "answers.jsonl"
        # first run: stops while the batch is in progress (as an interrupted run would)
        first = run_batch(_questions(tmp_path), out, s, poll_s=0.0, max_wait_s=0.0)
        assert first.pending == 2 and first.answered == 1
        assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == ["c"]
        # second run: same command, polls the saved batch, never uploads or creates another
        second = run_batch(_questions(tmp_path), out, s, poll_s=0.0)
        assert second.pending == 0 and second.answered == 3
        assert server.api.count("POST", "/v1/files") == 1 and server.api.count("POST", "/v1/batches") == 1
        # a third run finds nothing to do
        run_batch(_questions(tmp_path), out, s, poll_s=0.0)
        assert server.api.count("POST", "/v1/batches") == 1
        answers = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
        assert answers["a"]["answer"] == "Batched answer [1]." and answers["a"]["batch"] is True
        assert answers["c"]["answer"] == "Local answer [1]." and answers["c"]["batch"] is False
        rows = [r for r in s.ledger.rows() if r.stage == "llm" and r.model == "gpt-4o-mini"]
        assert len(rows) == 2 and all(r.provider == "openai-batch" for r in rows)
        price = s.prices.price("gpt-4o-mini")
        assert price is not None
        full = price.cost(rows[0].input_tokens, rows[0].output_tokens)
        assert rows[0].usd == pytest.approx(full * 0.5)
        s.close()


def test_batch_finds_a_batch_created_but_not_saved(tmp_path: Path) -> None:
    with FakeBatchServer() as server:
        s = _stages(tmp_path, server.base_url)
        out = tmp_path / "answers.jsonl"
        q = _questions(tmp_path)
        run_batch(q, out, s, poll_s=0.0, max_wait_s=0.0)
        state_path = out.with_name(out.name + ".state.json")
        state = json.loads(state_path.read_text())
        del state["batches"][0]["batch_id"]  # the run died between batches.create and saving its id
        state_path.write_text(json.dumps(state))
        report = run_batch(q, out, s, poll_s=0.0)
        assert report.answered == 3 and server.api.count("POST", "/v1/batches") == 1
        s.close()


def test_state_of_another_file_is_refused(tmp_path: Path) -> None:
    with FakeBatchServer() as server:
        s = _stages(tmp_path, server.base_url)
        out = tmp_path / "answers.jsonl"
        run_batch(_questions(tmp_path), out, s, poll_s=0.0, max_wait_s=0.0)
        other = tmp_path / "other.jsonl"
        other.write_text('{"question": "Something else?"}\n')
        with pytest.raises(InputError, match="belongs to another questions file"):
            run_batch(other, out, s, poll_s=0.0)
        s.close()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nope\n", "not valid JSON"),
        ('{"id": 1}\n', "non-empty"),
        ('{"id": 1, "question": "a"}\n' * 2, "twice"),
    ],
)
def test_questions_file_errors(tmp_path: Path, text: str, message: str) -> None:
    q = tmp_path / "q.jsonl"
    q.write_text(text)
    with pytest.raises(InputError, match=message):
        read_questions(q)


def test_cli_query_batch(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ragcli.cli import app

    runner = CliRunner()
    with FakeBatchServer():
        cfg = tmp_path / "cfg.yaml"
        cfg.write_text(
            f"home: {tmp_path}\nembedder: {{type: hash, dim: 64}}\nllm: {{type: scripted}}\n"
            "store: {type: qdrant, path: " + str(tmp_path / "q") + "}\n"
        )
        docs = tmp_path / "docs"
        docs.mkdir()
        (docs / "a.txt").write_text("The hotel limit in Paris is 250 euros per night.\n")
        assert runner.invoke(app, ["ingest", str(docs), "--config", str(cfg)]).exit_code == 0
        out = tmp_path / "answers.jsonl"
        result = runner.invoke(
            app, ["query", "--batch", str(_questions(tmp_path)), "--out", str(out), "--config", str(cfg)]
        )
        assert result.exit_code == 0, result.output
        assert "answered 3" in result.output and len(out.read_text().splitlines()) == 3
    usage = runner.invoke(app, ["query", "--config", str(cfg)])
    assert usage.exit_code == 64 and "--batch" in usage.output
    both = runner.invoke(app, ["query", "q?", "--batch", str(_questions(tmp_path)), "--out", str(out)])
    assert both.exit_code == 64 and "not both" in both.output
