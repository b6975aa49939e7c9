"""Batch mode for an Anthropic tier, against a local fake of the Message Batches endpoints through the real
`anthropic` SDK: API-tier questions go in one batch at the batch price, a run interrupted while the batch is in
progress resumes without submitting again, a batch created but not saved is found again, and a question id
Anthropic would refuse as a custom_id is mapped back to its line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("anthropic")

from ragcli.config import parse_config
from ragcli.generation.scripted_llm import ScriptedLLM
from ragcli.ingest.plain_text_parser import PlainTextParser
from ragcli.pipelines.batch_pipeline import run_batch
from ragcli.pipelines.ingest_pipeline import ingest
from ragcli.pipelines.stages import Stages
from tests.unit.fake_anthropic_batch_server import FakeAnthropicBatchAPI
from tests.unit.fake_openai_batch_server import FakeBatchServer
from tests.unit.test_batch_mode import forget_saved_batch_id

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "docs"
MODEL = "claude-sonnet-4-5"
BATCHES = "/v1/messages/batches"


@pytest.fixture()
def server(monkeypatch: pytest.MonkeyPatch) -> object:
    api = FakeAnthropicBatchAPI()
    with FakeBatchServer(api) as srv:
        api.root_url = srv.root_url
        monkeypatch.setenv("ANTHROPIC_BASE_URL", srv.root_url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        yield srv


def _stages(tmp_path: Path) -> Stages:
    cfg = parse_config(
        {
            "home": str(tmp_path),
            "collection": "t",
            "store": {"type": "qdrant", "location": ":memory:"},
            "embedder": {"type": "hash", "dim": 64},
            "tiers": [{"type": "scripted"}, {"type": "anthropic", "model": MODEL}],
            "router": {"rules": [{"tier": 1, "question_matches": "hotel"}]},
            "cost": {"use_litellm_prices": False},
        }
    )
    from ragcli.generation.build import build_llm

    api = build_llm(cfg.model_copy(update={"llm": cfg.tiers[1]}), Stages.from_config(cfg).prices)
    s = Stages.from_config(cfg, parser=PlainTextParser(), tiers=[ScriptedLLM(["Local answer [1]."]), api])
    assert not ingest([SAMPLES / "travel-policy.md"], s).failed
    return s


def _questions(tmp_path: Path, *extra: dict[str, str]) -> Path:
    q = tmp_path / "q.jsonl"
    lines = (
        {"id": "a", "question": "What is the hotel limit in Paris?"},
        {"id": "b", "question": "Which hotel class may staff book?"},
        {"id": "c", "question": "How are trains booked?"},
        *extra,
    )
    q.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return q


def _lines(out: Path) -> dict[str, dict[str, object]]:
    return {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}


def test_anthropic_batch_resumes_without_paying_twice(tmp_path: Path, server: FakeBatchServer) -> None:
    server.api.polls_to_complete = 3
    s = _stages(tmp_path)
    out = tmp_path / "answers.jsonl"
    first = run_batch(_questions(tmp_path), out, s, poll_s=0.0, max_wait_s=0.0)
    assert first.pending == 2 and first.answered == 1 and first.batches == ["msgbatch_1"]
    second = run_batch(_questions(tmp_path), out, s, poll_s=0.0)
    assert second.pending == 0 and second.answered == 3
    run_batch(_questions(tmp_path), out, s, poll_s=0.0)
    assert server.api.count("POST", BATCHES) == 1
    sent = server.api.requests["msgbatch_1"]
    assert [r["custom_id"] for r in sent] == ["a", "b"] and all(r["params"]["model"] == MODEL for r in sent)
    assert all("hotel" in json.dumps(r["params"]["messages"]) for r in sent)
    answers = _lines(out)
    assert answers["a"]["answer"] == "Batched answer [1]." and answers["a"]["batch"] is True
    assert answers["c"]["answer"] == "Local answer [1]." and answers["c"]["batch"] is False
    rows = [r for r in s.ledger.rows() if r.stage == "llm" and r.model == MODEL]
    assert len(rows) == 2 and all(r.provider == "anthropic-batch" for r in rows)
    price = s.prices.price(MODEL)
    assert price is not None
    assert rows[0].usd == pytest.approx(price.cost(rows[0].input_tokens, rows[0].output_tokens) * 0.5)
    s.close()


def test_anthropic_batch_created_but_not_saved_is_found_again(
    tmp_path: Path, server: FakeBatchServer
) -> None:
    s = _stages(tmp_path)
    out = tmp_path / "answers.jsonl"
    q = _questions(tmp_path)
    run_batch(q, out, s, poll_s=0.0, max_wait_s=0.0)
    forget_saved_batch_id(out)
    report = run_batch(q, out, s, poll_s=0.0)
    assert report.answered == 3 and server.api.count("POST", BATCHES) == 1
    s.close()


def test_an_id_anthropic_refuses_is_mapped_back_and_an_errored_request_fails_alone(
    tmp_path: Path, server: FakeBatchServer
) -> None:
    def answer(params: dict[str, object]) -> str | None:
        return None if "Which hotel class" in json.dumps(params["messages"]) else "Batched answer [1]."

    server.api.answer_for = answer
    s = _stages(tmp_path)
    out = tmp_path / "answers.jsonl"
    odd = {"id": "hotel/ü 1", "question": "Is breakfast in the hotel rate?"}
    report = run_batch(_questions(tmp_path, odd), out, s, poll_s=0.0)
    assert report.answered == 3 and report.failed == 1
    custom = [r["custom_id"] for r in server.api.requests["msgbatch_1"]]
    assert "hotel/ü 1" not in custom and all(len(c) <= 64 for c in custom)
    answers = _lines(out)
    assert answers["hotel/ü 1"]["answer"] == "Batched answer [1]."
    assert answers["b"]["status"] == "failed" and "invalid_request_error" in str(answers["b"]["error"])
    assert (
        sum(1 for r in s.ledger.rows() if r.provider == "anthropic-batch") == 2
    )  # the errored one is not billed
    s.close()
