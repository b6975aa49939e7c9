"""Conversation: bounded history, incremental capped summary, persistence, follow-up retrieval queries."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragcli.errors import InputError
from ragcli.generation.conversation import Conversation, is_follow_up
from ragcli.generation.extractive_summarizer import ExtractiveSummarizer, Summary, fact_weight
from ragcli.types import Message


def words(text: str) -> int:
    return len(text.split())


def test_window_and_summary_bound_the_history() -> None:
    conv = Conversation(words, window_turns=2, summary_cap_tokens=60)
    conv.add("My name is Ana and my budget is 4000 euros.", "Noted, Ana.")
    sent = []
    for i in range(30):
        report = conv.add(
            f"Tell me about topic number {i} please, in detail.", f"Topic {i} is about things. " * 5
        )
        sent.append(report.sent_tokens)
        assert report.summary_tokens <= 60
    assert max(sent[5:]) - min(sent[5:]) < 40  # flat once the window is full
    assert report.full_tokens > 5 * report.sent_tokens and report.saved_tokens > 0
    history = conv.history()
    assert history[0].role == "system" and len(history) == 1 + 2 * 2
    assert "4000" in history[0].content and "Ana" in history[0].content  # the stated fact survives 30 turns


def test_only_newly_expired_turns_are_folded() -> None:
    calls: list[int] = []

    class Counting(ExtractiveSummarizer):
        def fold(self, summary: Summary, turns: list[Message], first_turn: int, cap_tokens: int) -> Summary:  # type: ignore[override]
            calls.append(len(turns))
            return super().fold(summary, turns, first_turn, cap_tokens)

    conv = Conversation(words, window_turns=3, summarizer=Counting(words))
    for i in range(8):
        conv.add(f"question {i} about Paris", f"answer {i}")
    assert calls == [2] * 5  # one expired turn (user + assistant) per add once the window is full
    assert conv.summary.turns_folded == 5


def test_summary_cap_is_enforced_even_if_a_summarizer_overshoots() -> None:
    class Greedy:
        model_name = "greedy"

        def fold(self, summary: Summary, turns: list[Message], first_turn: int, cap_tokens: int) -> Summary:
            return ExtractiveSummarizer(words).fold(summary, turns, first_turn, 10_000)

    conv = Conversation(words, window_turns=1, summary_cap_tokens=25, summarizer=Greedy())
    for i in range(10):
        conv.add(f"I live in Town{i} since {1990 + i} with Bob.", f"Town{i} is nice, founded in {1200 + i}.")
    assert words(conv.summary.render()) <= 25


def test_user_stated_facts_outrank_small_talk() -> None:
    assert fact_weight("My flight is on 12 May at 9:40.", "user") > fact_weight(
        "That sounds lovely.", "assistant"
    )
    assert fact_weight("We decided to use Postgres.", "user") > fact_weight(
        "Postgres is a database.", "assistant"
    )


def test_persistence_resumes_a_session(tmp_path: Path) -> None:
    conv = Conversation.open(tmp_path, "s1", words, window_turns=1)
    conv.add("My order id is AB-1234.", "Got it.")
    conv.add("And the colour is blue.", "Blue it is.")
    again = Conversation.open(tmp_path, "s1", words, window_turns=1)
    assert len(again.turns) == 2 and "AB-1234" in again.summary.render()
    assert again.history() == conv.history()
    with pytest.raises(InputError, match="session name"):
        Conversation.open(tmp_path, "../x", words)
    (tmp_path / "conversations" / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(InputError, match="delete the file"):
        Conversation.open(tmp_path, "bad", words)


def test_follow_up_retrieval_query_uses_the_conversation() -> None:
    conv = Conversation(words)
    assert conv.retrieval_query("Which option overrides it?") == "Which option overrides it?"
    conv.add(
        "How do I set the packing budget in the YAML config?", "Use packing.budget_tokens in the config."
    )
    q = conv.retrieval_query("Which option overrides it?")
    assert q.startswith("Which option overrides it?") and "packing" in q and "budget" in q
    standalone = "What is the hotel limit in Paris for managers?"
    assert conv.retrieval_query(standalone) == standalone
    assert is_follow_up("And for Berlin?") and not is_follow_up(standalone)
