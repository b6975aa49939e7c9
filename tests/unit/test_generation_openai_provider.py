"""OpenAICompatibleLLM against a local fake server: retries, Retry-After, timeouts, malformed bodies, 401/404,
budget, streaming, and the ledger counting each billed call once."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragcli.config import CostConfig, PriceOverride
from ragcli.cost.ledger import Ledger, LedgerRow
from ragcli.cost.prices import PriceTable
from ragcli.errors import BackendError, ConfigError
from ragcli.generation.retry import RetryPolicy, parse_retry_after
from ragcli.pipelines.stages import Stages
from ragcli.types import Completion, Message
from tests.unit.fake_openai_server import FakeOpenAIServer, Reply, completion_body, error_body

pytest.importorskip("openai")

from ragcli.generation.openai_compatible_llm import OpenAICompatibleLLM

KEY = "sk-test-secret-key-123456"
MSGS = [
    Message("system", "Answer from the sources."),
    Message("user", "Sources:\n[1] a.md\nParis.\n\nQuestion: capital?"),
]


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as s:
        yield s


@pytest.fixture
def prices() -> PriceTable:
    return PriceTable.load(CostConfig(use_litellm_prices=False))


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make(
    server: FakeOpenAIServer, prices: PriceTable, monkeypatch: pytest.MonkeyPatch, **kw: object
) -> OpenAICompatibleLLM:
    monkeypatch.setenv("TEST_LLM_KEY", KEY)
    args: dict[str, object] = {
        "base_url": server.base_url,
        "api_key_env": "TEST_LLM_KEY",
        "timeout_s": 5.0,
        "retry_policy": RetryPolicy(max_retries=3, base_s=0.5),
        "sleep": Sleeps(),
    }
    args.update(kw)
    return OpenAICompatibleLLM("gpt-4o-mini", prices, **args)  # type: ignore[arg-type]


def test_success_is_priced_from_the_response_usage(
    server: FakeOpenAIServer, prices: PriceTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.script(Reply(body=completion_body("Paris [1].", prompt=1000, output=100, cached=400)))
    llm = make(server, prices, monkeypatch)
    c = llm.complete(MSGS, max_tokens=64)
    assert c.text == "Paris [1]." and c.model == "gpt-4o-mini"
    u = c.usage
    assert (u.input_tokens, u.cached_tokens, u.output_tokens, u.calls) == (1000, 400, 100, 1)
    assert u.usd == pytest.approx((600 * 0.15 + 400 * 0.075 + 100 * 0.60) / 1e6)
    seen = server.requests[0]
    assert seen.path == "/v1/chat/completions" and seen.headers["authorization"] == f"Bearer {KEY}"
    assert seen.body["max_tokens"] == 64 and seen.body["messages"][0] == {
        "role": "system",
        "content": MSGS[0].content,
    }
    assert c.attempts == 1 and c.provider == "openai"


def test_429_with_retry_after_is_honoured_then_succeeds(
    server: FakeOpenAIServer,
    prices: PriceTable,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server.script(Reply(429, error_body("Rate limit reached"), headers={"Retry-After": "7"}), Reply())
    sleeps = Sleeps()
    llm = make(server, prices, monkeypatch, sleep=sleeps)
    with caplog.at_level(logging.WARNING):
        c = llm.complete(MSGS, max_tokens=16)
    assert c.text == "Paris [1]."
    assert sleeps == [7.0]
    assert c.attempts == 2
    assert len(server.requests) == 2
    assert "attempt 1 of 4 failed" in caplog.text and KEY not in caplog.text


def test_500_then_success_backs_off_exponentially(
    server: FakeOpenAIServer, prices: PriceTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.script(Reply(500, error_body("boom")), Reply(503, error_body("overloaded")), Reply())
    sleeps = Sleeps()
    llm = make(server, prices, monkeypatch, sleep=sleeps)
    assert llm.complete(MSGS, max_tokens=16).text == "Paris [1]."
    assert len(sleeps) == 2 and 0.5 <= sleeps[0] <= 0.55 and 1.0 <= sleeps[1] <= 1.1


def test_persistent_5xx_gives_up_after_max_retries(
    server: FakeOpenAIServer, prices: PriceTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.script(*[Reply(502, error_body("bad gateway")) for _ in range(5)])
    llm = make(server, prices, monkeypatch, retry_policy=RetryPolicy(max_retries=2, base_s=0.01))
    with pytest.raises(BackendError, match="gave up after 3 attempts") as info:
        llm.complete(MSGS, max_tokens=16)
    assert info.value.status == 502 and len(server.requests) == 3


def test_timeout_is_retried(
    server: FakeOpenAIServer, prices: PriceTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.script(Reply(delay_s=1.5), Reply())
    llm = make(server, prices, monkeypatch, timeout_s=0.3)
    c = llm.complete(MSGS, max_tokens=16)
    assert c.text == "Paris [1]." and c.attempts == 2


def test_slow_but_in_time_response_is_not_retried(
    server: FakeOpenAIServer, prices: PriceTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.script(Reply(delay_s=0.3))
    llm = make(server, prices, monkeypatch, timeout_s=3.0)
    c = llm.complete(MSGS, max_tokens=16)
    assert c.attempts == 1 and c.latency_s >= 0.3


def test_malformed_json_body_is_retried_then_reported(
    server: FakeOpenAIServer, prices: PriceTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.script(Reply(body="{not json"), Reply())
    llm = make(server, prices, monkeypatch)
    c = llm.complete(MSGS, max_tokens=16)
    assert c.text == "Paris [1]." and c.attempts == 2
    server.script(*[Reply(body='{"unexpected": true}') for _ in range(2)])
    llm2 = make(server, prices, monkeypatch, retry_policy=RetryPolicy(max_retries=1, base_s=0.01))
    with pytest.raises(BackendError, match="malformed"):
        llm2.complete(MSGS, max_tokens=16)


def test_bad_key_401_is_clear_not_retried_and_hides_the_key(
    server: FakeOpenAIServer, prices: PriceTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.script(Reply(401, error_body(f"Incorrect API key provided: {KEY}", "invalid_api_key")))
    llm = make(server, prices, monkeypatch)
    with pytest.raises(BackendError) as info:
        llm.complete(MSGS, max_tokens=16)
    msg = str(info.value)
    assert info.value.status == 401 and "$TEST_LLM_KEY" in msg and "401" in msg and KEY not in msg
    assert len(server.requests) == 1 and not info.value.retryable


def test_unknown_model_404_names_the_model(
    server: FakeOpenAIServer, prices: PriceTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.script(Reply(404, error_body("The model `gpt-4o-mini` does not exist", "model_not_found")))
    llm = make(server, prices, monkeypatch)
    with pytest.raises(BackendError, match=r"model 'gpt-4o-mini' was not found.*llm\.model") as info:
        llm.complete(MSGS, max_tokens=16)
    assert info.value.status == 404 and len(server.requests) == 1


def test_quota_429_is_not_retried(
    server: FakeOpenAIServer, prices: PriceTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.script(Reply(429, error_body("You exceeded your current quota", "insufficient_quota")))
    with pytest.raises(BackendError, match="quota"):
        make(server, prices, monkeypatch).complete(MSGS, max_tokens=16)
    assert len(server.requests) == 1


def test_missing_env_var_is_an_input_error_before_any_request(
    server: FakeOpenAIServer, prices: PriceTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    llm = make(server, prices, monkeypatch)
    monkeypatch.delenv("TEST_LLM_KEY")
    with pytest.raises(ConfigError, match="TEST_LLM_KEY is not set"):
        llm.complete(MSGS, max_tokens=16)
    assert server.requests == []


def test_keyless_server(
    server: FakeOpenAIServer, prices: PriceTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    llm = make(server, prices, monkeypatch, api_key_env=None)
    assert llm.complete(MSGS, max_tokens=8).text == "Paris [1]."


def test_estimate_prices_the_call_before_it_is_made(
    server: FakeOpenAIServer, prices: PriceTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    llm = make(server, prices, monkeypatch)
    est = llm.estimate(MSGS, 100)
    assert est.usd is not None and est.usd > 0 and est.input_tokens > 0 and est.output_tokens == 100
    assert server.requests == []


def test_unknown_price_is_unknown_and_blocks_a_budget(
    server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = PriceTable.load(CostConfig(use_litellm_prices=False))
    monkeypatch.setenv("TEST_LLM_KEY", KEY)
    llm = OpenAICompatibleLLM("my-served-model", table, base_url=server.base_url, api_key_env="TEST_LLM_KEY")
    assert llm.complete(MSGS, max_tokens=8).usage.usd is None
    assert llm.token_count_is_estimate  # not an OpenAI model: cl100k is an estimate
    assert llm.estimate(MSGS, 8).usd is None  # a query budget refuses it (tests/unit/test_cost_budget.py)
    free = PriceTable.load(
        CostConfig(use_litellm_prices=False, prices={"local-zero": PriceOverride(input=0, output=0)})
    )
    priced = OpenAICompatibleLLM(
        "my-served-model", free, base_url=server.base_url, api_key_env="TEST_LLM_KEY", price_as="local-zero"
    )
    assert priced.complete(MSGS, max_tokens=8).usage.usd == 0.0


def test_streaming_yields_pieces_then_usage(
    server: FakeOpenAIServer, prices: PriceTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.script(
        Reply(429, error_body("slow down"), headers={"retry-after-ms": "250"}),
        Reply(stream=["Par", "is ", "[1]."], usage={"prompt_tokens": 321, "completion_tokens": 3}),
    )
    sleeps = Sleeps()
    llm = make(server, prices, monkeypatch, sleep=sleeps)
    out = list(llm.stream(MSGS, max_tokens=16))
    assert out[:-1] == ["Par", "is ", "[1]."]
    final = out[-1]
    assert isinstance(final, Completion) and final.text == "Paris [1]."
    assert final.usage.input_tokens == 321 and final.usage.output_tokens == 3 and final.usage.usd
    assert sleeps == [0.25]
    assert server.requests[-1].body["stream_options"] == {"include_usage": True}


def test_ledger_counts_each_billed_call_once(
    server: FakeOpenAIServer, prices: PriceTable, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Failed attempts are not billed and not rows: two calls with retries -> two rows, the billed tokens."""
    server.script(
        Reply(429, error_body("rate")),
        Reply(500, error_body("x")),
        Reply(body=completion_body(prompt=100, output=10)),
        Reply(body="garbage"),
        Reply(body=completion_body(prompt=200, output=20)),
    )
    llm = make(server, prices, monkeypatch)
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        for _ in range(2):
            c = llm.complete(MSGS, max_tokens=32)
            ledger.record(LedgerRow.of("llm", c.model, c.usage, c.latency_s, query_id="q"))
        rows = ledger.rows()
        assert len(server.requests) == 5
        assert [(r.input_tokens, r.output_tokens) for r in rows] == [(100, 10), (200, 20)]
        (total,) = ledger.totals("model")
        assert total.calls == 2 and total.usd == pytest.approx((300 * 0.15 + 30 * 0.60) / 1e6)


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert parse_retry_after({"Retry-After": "soon"}) is None and parse_retry_after({}) is None
    assert RetryPolicy(max_wait_s=10).wait(0, 99.0) == 10.0


class _OneChunkStore:
    """A store stand-in that always finds the same chunk."""

    def __init__(self) -> None:
        from ragcli.types import Chunk, Hit

        self.hits = [
            Hit(Chunk(id="c1", doc_id="d1", text="Paris is the capital of France.", source="a.md"), 0.9)
        ]

    def search(self, request: object) -> list[object]:
        return list(self.hits)

    def count(self, filter: object = None) -> int:
        return 1

    def close(self) -> None:
        pass


def test_query_pipeline_writes_one_llm_row_per_billed_call(
    server: FakeOpenAIServer, prices: PriceTable, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Through the real query pipeline: a 429 and a 500 before success still give exactly one LLM row."""
    from ragcli.config import parse_config
    from ragcli.ingest.hash_embedder import HashEmbedder
    from ragcli.pipelines.query_pipeline import answer
    from ragcli.pipelines.stages import Stages

    server.script(
        Reply(429, error_body("rate"), headers={"Retry-After": "0"}),
        Reply(500, error_body("x")),
        Reply(body=completion_body("Paris [1].", prompt=123, output=4)),
    )
    llm = make(server, prices, monkeypatch)
    cfg = parse_config({"llm": {"type": "openai", "model": "gpt-4o-mini"}, "embedder": {"type": "hash"}})
    ledger = Ledger(tmp_path / "ledger.sqlite")
    stages = Stages.from_config(
        cfg, llm=llm, embedder=HashEmbedder(), store=_OneChunkStore(), ledger=ledger, prices=prices
    )
    try:
        ans = answer("What is the capital of France?", stages)
        llm_rows = [r for r in ledger.rows() if r.stage == "llm"]
        assert ans.text == "Paris [1]." and ans.citations[0].chunk_id == "c1"
        assert len(server.requests) == 3 and len(llm_rows) == 1
        assert (llm_rows[0].input_tokens, llm_rows[0].output_tokens) == (123, 4)
        assert llm_rows[0].query_id == ans.query_id and llm_rows[0].usd == pytest.approx(ans.usage.usd)
    finally:
        stages.close()


def test_stream_without_usage_is_estimated_with_a_warning(
    server: FakeOpenAIServer,
    prices: PriceTable,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server.script(Reply(stream=["Paris", " [1]."], omit_usage=True))
    llm = make(server, prices, monkeypatch)
    with caplog.at_level(logging.WARNING):
        final = list(llm.stream(MSGS, max_tokens=16))[-1]
    assert isinstance(final, Completion) and final.text == "Paris [1]."
    assert final.usage.input_tokens > 0 and final.usage.output_tokens > 0 and final.usage.usd is not None
    assert "no token usage" in caplog.text


def test_a_stream_with_a_malformed_200_body_is_retried_then_an_error_never_billed(
    server: FakeOpenAIServer, prices: PriceTable, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A 200 whose body is not an event stream used to give an empty answer billed from estimates."""
    server.script(Reply(body='{"unexpected": true}'), Reply(stream=["Par", "is [1]."]))
    llm = make(server, prices, monkeypatch, retry_policy=RetryPolicy(max_retries=2, base_s=0.01))
    pieces = list(llm.stream(MSGS, max_tokens=16))
    final = pieces[-1]
    assert isinstance(final, Completion) and final.text == "Paris [1]." and final.attempts == 2
    assert pieces[:-1] == ["Par", "is [1]."]

    server.script(*[Reply(body="garbage") for _ in range(3)])
    with pytest.raises(BackendError, match="malformed"):
        list(llm.stream(MSGS, max_tokens=16))
    assert len(server.requests) == 2 + 3


def test_streamed_malformed_response_through_the_pipeline_writes_no_billed_row(
    server: FakeOpenAIServer, prices: PriceTable, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from ragcli.config import parse_config
    from ragcli.ingest.hash_embedder import HashEmbedder
    from ragcli.pipelines.query_pipeline import QueryOptions, answer

    monkeypatch.setenv("TEST_LLM_KEY", KEY)
    cfg = parse_config(
        {
            "embedder": {"type": "hash"},
            "llm": {"type": "openai", "model": "gpt-4o-mini", "base_url": server.base_url,
                    "api_key_env": "TEST_LLM_KEY", "max_retries": 1},
            "cost": {"ledger": str(tmp_path / "ledger.sqlite")},
        }
    )  # fmt: skip
    stages = Stages.from_config(cfg, store=_OneChunkStore(), embedder=HashEmbedder(64))
    server.script(Reply(body="{}"), Reply(body="{}"))
    shown: list[str] = []
    with pytest.raises(BackendError, match="malformed"):
        answer("What is the capital?", stages, QueryOptions(on_token=shown.append))
    assert shown == [] and [r.stage for r in stages.ledger.rows()] == ["embed_query"]
    stages.close()
