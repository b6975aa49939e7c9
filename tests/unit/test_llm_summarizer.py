"""LLMSummarizer: one call per fold over the new turns only, notes as facts under the cap, usage reported,
extractive fallback when the model fails or writes nothing usable (a scripted LLM: plumbing, not quality)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ragcli.errors import BackendError
from ragcli.generation.conversation import Conversation
from ragcli.generation.llm_summarizer import LLMSummarizer, parse_notes
from ragcli.generation.scripted_llm import ScriptedLLM
from ragcli.types import Completion, Message, Usage


def words(text: str) -> int:
    return len(text.split())


def test_each_fold_sends_only_the_new_turns_and_reports_its_usage() -> None:
    llm = ScriptedLLM(["- Ana's budget is 4000 euros.\n- Ana lives in Porto."])
    calls: list[Usage] = []

    def call(messages: Sequence[Message], max_tokens: int) -> Completion:
        done = llm.complete(messages, max_tokens=max_tokens)
        calls.append(done.usage)
        return done

    conv = Conversation(
        words, window_turns=1, summary_cap_tokens=40, summarizer=LLMSummarizer(llm, words, call=call)
    )
    conv.add("My name is Ana, my budget is 4000 euros.", "Noted.")
    assert llm.prompts == []  # nothing has left the window yet
    report = conv.add("I live in Porto.", "Porto, noted.")
    assert len(llm.prompts) == 1 and report.summarizer_usage.calls == 1 and len(calls) == 1
    assert "4000 euros" in llm.prompts[0][-1].content and "Porto" not in llm.prompts[0][-1].content
    conv.add("What should I buy?", "A bike.")
    assert len(llm.prompts) == 2 and "4000" not in llm.prompts[1][-1].content  # never the folded turns again
    summary = conv.history()[0].content
    assert "4000 euros" in summary and "Porto" in summary


def test_the_cap_holds_whatever_the_model_writes() -> None:
    llm = ScriptedLLM(["\n".join(f"- Fact {i}: the value is {i * 11} units." for i in range(30))])
    conv = Conversation(words, window_turns=1, summary_cap_tokens=30, summarizer=LLMSummarizer(llm, words))
    for i in range(6):
        report = conv.add(f"Question {i} about item {i}?", f"Answer {i}.")
        assert report.summary_tokens <= 30


class Broken(ScriptedLLM):
    def complete(self, messages: Sequence[Message], *, max_tokens: int) -> Completion:
        raise BackendError("the summariser's server is down")


def test_a_failed_or_empty_call_falls_back_to_extractive_notes() -> None:
    for llm in (Broken(), ScriptedLLM(["ok"])):
        conv = Conversation(
            words, window_turns=1, summary_cap_tokens=60, summarizer=LLMSummarizer(llm, words)
        )
        conv.add("My name is Ana and my budget is 4000 euros.", "Noted, Ana.")
        conv.add("And the deadline?", "Friday.")
        assert "4000 euros" in conv.history()[0].content


def test_parse_notes() -> None:
    assert parse_notes("Notes:\n- one fact here\n* two\n3. three things") == [
        "one fact here",
        "two",
        "three things",
    ]
    assert parse_notes("Ana has a budget of 4000.\nok") == ["Ana has a budget of 4000."]


class Priced(ScriptedLLM):
    """A scripted model whose every call would cost a dollar."""

    def estimate(self, messages: Sequence[Message], max_tokens: int) -> Usage:
        return Usage(input_tokens=10, output_tokens=max_tokens, usd=1.0, calls=1)


def test_a_summary_call_is_metered_and_refused_over_budget(tmp_path: Path) -> None:
    from ragcli.config import parse_config
    from ragcli.pipelines.query_pipeline import metered_call
    from ragcli.pipelines.stages import Stages

    def stages(limit: float | None, llm: ScriptedLLM) -> Stages:
        cfg = parse_config(
            {
                "home": str(tmp_path / str(limit)),
                "embedder": {"type": "hash"},
                "cost": {"max_usd_per_query": limit},
            }
        )
        return Stages.from_config(cfg, llm=llm)

    ok = stages(None, ScriptedLLM(["- Ana's budget is 4000 euros."]))
    conv = Conversation(
        words,
        window_turns=1,
        summarizer=LLMSummarizer(ok.llm, words, call=metered_call(ok, ok.llm, "summary")),
    )
    conv.add("My name is Ana, my budget is 4000 euros.", "Noted.")
    conv.add("And the deadline?", "Friday.")
    rows = [r for r in ok.ledger.rows() if r.stage == "summary"]
    assert len(rows) == 1 and rows[0].hidden and rows[0].status == "ok"

    llm = Priced(["- never written"])
    tight = stages(0.01, llm)
    conv = Conversation(
        words, window_turns=1, summarizer=LLMSummarizer(llm, words, call=metered_call(tight, llm, "summary"))
    )
    conv.add("My name is Ana, my budget is 4000 euros.", "Noted.")
    conv.add("And the deadline?", "Friday.")
    assert llm.prompts == []  # refused before the call: nothing was spent
    assert "4000 euros" in conv.history()[0].content  # the extractive fold kept the fact
    refused = [r for r in tight.ledger.rows() if r.stage == "summary"]
    assert [r.status for r in refused] == ["refused"]
