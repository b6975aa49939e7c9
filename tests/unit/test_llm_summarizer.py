"""LLMSummarizer: one call per fold over the new turns only, notes as facts under the cap, usage reported,
extractive fallback when the model fails or writes nothing usable (a scripted LLM: plumbing, not quality)."""

from __future__ import annotations

from collections.abc import Sequence

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
    conv = Conversation(
        words,
        window_turns=1,
        summary_cap_tokens=40,
        summarizer=LLMSummarizer(llm, words, on_call=lambda usage, _s: calls.append(usage)),
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
