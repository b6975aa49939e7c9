"""The route step and the cascade in the query path, on fakes: which tier answered and why, one ledger row per
attempt, one budget for all attempts."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from ragcli.config import parse_config
from ragcli.generation.scripted_llm import ScriptedLLM
from ragcli.ingest.plain_text_parser import PlainTextParser
from ragcli.pipelines.ingest_pipeline import ingest
from ragcli.pipelines.query_pipeline import QueryOptions, answer
from ragcli.pipelines.stages import Stages
from ragcli.types import Completion, Message, Usage

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "docs"
GOOD = "The hotel limit in Paris is 250 euros per night [1]."
BAD = "Bananas are purple on Tuesdays [1]."


class PricedLLM(ScriptedLLM):
    """A scripted tier that bills `usd` per call and estimates the same before it."""

    def __init__(self, replies: Sequence[str], name: str, usd: float) -> None:
        super().__init__(replies, model_name=name)
        self.usd = usd
        self.calls = 0

    def estimate(self, messages: Sequence[Message], max_tokens: int) -> Usage:
        return replace(super().estimate(messages, max_tokens), usd=self.usd)

    def complete(self, messages: Sequence[Message], *, max_tokens: int) -> Completion:
        self.calls += 1
        c = super().complete(messages, max_tokens=max_tokens)
        return replace(c, usage=replace(c.usage, usd=self.usd))

    def stream(self, messages: Sequence[Message], *, max_tokens: int) -> Iterator[str | Completion]:
        c = self.complete(messages, max_tokens=max_tokens)
        yield c.text
        yield c


def _stages(tmp_path: Path, tiers: list[ScriptedLLM], **over: object) -> Stages:
    cfg = parse_config(
        {
            "home": str(tmp_path),
            "collection": "t",
            "store": {"type": "qdrant", "location": ":memory:"},
            "embedder": {"type": "hash", "dim": 64},
            "retrieval": {"top_k": 3},
            "tiers": [{"type": "scripted"} for _ in tiers],
            **over,
        }
    )
    s = Stages.from_config(cfg, parser=PlainTextParser(), tiers=tiers)
    report = ingest([SAMPLES / "travel-policy.md"], s)
    assert not report.failed
    return s


def _notes(ans: object, stage: str) -> list[dict[str, object]]:
    return [dict(t.detail) for t in ans.trace if t.stage == stage]  # type: ignore[attr-defined]


def test_rule_picks_the_tier_and_the_trace_says_why(tmp_path: Path) -> None:
    cheap, strong = PricedLLM([BAD], "cheap", 0.0), PricedLLM([GOOD], "strong", 0.01)
    s = _stages(
        tmp_path, [cheap, strong], router={"rules": [{"tier": "strong", "question_matches": "hotel"}]}
    )
    ans = answer("What is the hotel limit in Paris?", s)
    assert ans.text == GOOD and ans.model == "strong" and cheap.calls == 0
    (route,) = _notes(ans, "route")
    assert route["tier"] == 1 and route["reason"] == "rule 0" and route["model"] == "strong"
    assert s.route_log.labels() == []  # no feedback yet
    s.close()


def test_cascade_escalates_an_ungrounded_answer_and_bills_each_attempt(tmp_path: Path) -> None:
    cheap, strong = PricedLLM([BAD], "cheap", 0.001), PricedLLM([GOOD], "strong", 0.01)
    s = _stages(tmp_path, [cheap, strong], router={"cascade": {"enabled": True}})
    ans = answer("What is the hotel limit in Paris?", s)
    assert ans.text == GOOD and cheap.calls == 1 and strong.calls == 1
    steps = _notes(ans, "cascade")
    assert steps[0]["check"] == "fail" and "content words" in str(steps[0]["reason"])
    assert steps[1]["tier"] == 1
    llm_rows = [r for r in s.ledger.rows() if r.stage == "llm" and r.query_id == ans.query_id]
    assert [r.model for r in llm_rows] == ["cheap", "strong"]
    assert ans.usage.usd == pytest.approx(0.011)
    s.close()


def test_cascade_stops_at_a_grounded_cheap_answer(tmp_path: Path) -> None:
    cheap, strong = PricedLLM([GOOD], "cheap", 0.0), PricedLLM([GOOD], "strong", 0.01)
    s = _stages(tmp_path, [cheap, strong], router={"cascade": {"enabled": True}})
    pieces: list[str] = []
    ans = answer("What is the hotel limit in Paris?", s, QueryOptions(on_token=pieces.append))
    assert ans.model == "cheap" and strong.calls == 0 and "".join(pieces) == GOOD
    assert _notes(ans, "cascade")[0]["check"] == "pass"
    s.close()


def test_an_escalation_the_budget_refuses_keeps_the_paid_answer(tmp_path: Path) -> None:
    cheap, strong = PricedLLM([BAD], "cheap", 0.001), PricedLLM([GOOD], "strong", 0.05)
    s = _stages(
        tmp_path,
        [cheap, strong],
        router={"cascade": {"enabled": True}},
        cost={"budgets": {"per_query_usd": 0.01}},
    )
    ans = answer("What is the hotel limit in Paris?", s)
    assert ans.text == BAD and strong.calls == 0
    assert _notes(ans, "cascade")[-1]["escalation"] == "refused"
    refused = [r for r in s.ledger.rows() if r.model == "strong"]
    assert len(refused) == 1 and refused[0].status == "refused"
    s.close()


def test_feedback_labels_the_tier_that_answered(tmp_path: Path) -> None:
    cheap, strong = PricedLLM([GOOD], "cheap", 0.0), PricedLLM([GOOD], "strong", 0.01)
    s = _stages(tmp_path, [cheap, strong])
    ans = answer("What is the hotel limit in Paris?", s)
    assert _notes(ans, "route")[0]["reason"] == "default (cheapest)"
    s.route_log.add_feedback(ans.query_id, "good")
    assert s.route_log.labels() == [
        {"prompt": "What is the hotel limit in Paris?", "outcomes": {"cheap": "good"}}
    ]
    s.close()
