"""Provider faults behind the gateway, from a local fake OpenAI upstream: a timeout, 429 with Retry-After, 500,
malformed JSON, a slow first byte, a stream cut midway. Each is retried or ends in a clean OpenAI-shaped error for
the client, and only a call that returned a result is billed: one ledger row, counted once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("openai")

from fastapi.testclient import TestClient

from ragcli.serve.app import create_app
from tests.unit.fake_openai_server import FakeOpenAIServer, Reply, error_body
from tests.unit.gateway_support import Built, make_gateway

USD_PER_CALL = 50 * 0.15e-6 + 4 * 0.6e-6  # the fake's default usage (50 in, 4 out) at the prices below


@pytest.fixture
def upstream() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def built(tmp_path: Path, upstream: FakeOpenAIServer) -> Iterator[Built]:
    b = make_gateway(
        tmp_path,
        usd_per_day=1.0,
        llm={"type": "openai", "model": "gpt-4o-mini", "base_url": upstream.base_url, "api_key_env": None,
             "timeout_s": 1.0, "max_retries": 2, "context_window": 8192},
        cost={"prices": {"gpt-4o-mini": {"input": 0.15, "output": 0.6}}},
    )  # fmt: skip
    yield b
    b.gateway.state.close()


def post(b: Built, stream: bool = False) -> Any:
    body = {"model": "fake", "messages": [{"role": "user", "content": "hotel limits?"}], "stream": stream}
    return TestClient(create_app(b.gateway)).post(
        "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {b.keys['acme']}"}
    )


def llm_rows(b: Built) -> list[Any]:
    return [r for r in b.stages.ledger.rows() if r.stage == "llm" and r.status == "ok"]


def key_spent(b: Built) -> float:
    day = datetime.now(UTC).date().isoformat()
    return b.gateway.state.budgets.spent(f"key:{b.keys['acme'][3:15]}:day:{day}")


@pytest.mark.parametrize(
    ("fault", "tries"),
    [
        (Reply(delay_s=2.0), 2),  # no byte within llm.timeout_s: retried
        (Reply(status=429, body=error_body("slow down"), headers={"Retry-After": "0"}), 2),
        (Reply(status=500, body=error_body("boom")), 2),
        (Reply(status=200, body="{not json"), 2),
        (Reply(delay_s=0.4), 1),  # a slow first byte inside the timeout: one try
    ],
    ids=["timeout", "429-retry-after", "500", "malformed-json", "slow-first-byte"],
)
def test_a_fault_is_retried_and_billed_once(
    upstream: FakeOpenAIServer, built: Built, fault: Reply, tries: int
) -> None:
    upstream.script(fault)
    r = post(built)
    assert r.status_code == 200, r.text
    assert len(upstream.requests) == tries
    rows = llm_rows(built)
    assert len(rows) == 1 and rows[0].input_tokens == 50 and rows[0].output_tokens == 4
    assert float(r.headers["X-Ragcli-Cost-Usd"]) == pytest.approx(USD_PER_CALL)
    assert r.json()["usage"]["prompt_tokens"] == 50
    assert key_spent(built) == pytest.approx(USD_PER_CALL)


def test_every_try_failing_is_a_clean_error_and_bills_nothing(
    upstream: FakeOpenAIServer, built: Built
) -> None:
    upstream.script(*[Reply(status=500, body=error_body("boom"))] * 3)
    r = post(built)
    assert r.status_code in (502, 503)
    err = r.json()["error"]
    assert err["type"] == "upstream_error" and "500" in err["message"] and "Traceback" not in r.text
    assert len(upstream.requests) == 3 and llm_rows(built) == [] and key_spent(built) == 0.0


def test_a_refused_request_is_not_retried(upstream: FakeOpenAIServer, built: Built) -> None:
    upstream.script(Reply(status=400, body=error_body("bad max_tokens")))
    r = post(built)
    assert r.status_code == 502 and len(upstream.requests) == 1 and llm_rows(built) == []


def sse(r: Any) -> list[Any]:
    return [json.loads(ln[6:]) for ln in r.text.splitlines() if ln.startswith("data: {")]


def test_stream_passes_upstream_usage_through(upstream: FakeOpenAIServer, built: Built) -> None:
    upstream.script(
        Reply(stream=["Paris", " is", " it [1]."], usage={"prompt_tokens": 61, "completion_tokens": 3})
    )
    r = post(built, stream=True)
    events = sse(r)
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events if e.get("choices"))
    assert text.startswith("Paris is it [1].")
    assert events[-1]["usage"]["prompt_tokens"] == 61 and events[-1]["usage"]["completion_tokens"] == 3
    assert len(llm_rows(built)) == 1 and r.text.rstrip().endswith("[DONE]")


def test_stream_cut_midway_ends_with_an_error_event_and_no_bill(
    upstream: FakeOpenAIServer, built: Built
) -> None:
    upstream.script(Reply(stream=["one", " two", " three", " four"], cut_after=2))
    r = post(built, stream=True)
    assert r.status_code == 200
    events = sse(r)
    shown = "".join(e["choices"][0]["delta"].get("content", "") for e in events if e.get("choices"))
    assert shown == "one two"
    assert "error" in events[-1] and events[-1]["error"]["type"] == "upstream_error"
    assert "[DONE]" not in r.text
    assert llm_rows(built) == [] and key_spent(built) == 0.0


def test_stream_cut_before_any_text_is_retried_or_a_clean_error(
    upstream: FakeOpenAIServer, built: Built
) -> None:
    upstream.script(Reply(stream=["one", " two"], cut_after=0))
    r = post(built, stream=True)
    if r.status_code == 200:  # retried: the second try (a default reply, streamed) answered
        assert r.text.rstrip().endswith("[DONE]") and len(llm_rows(built)) == 1
    else:
        assert r.status_code in (502, 503) and r.json()["error"]["type"] == "upstream_error"
        assert llm_rows(built) == []
