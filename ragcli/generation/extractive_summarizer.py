"""A running summary of expired chat turns, extractive and capped: no model call, no cost.

A summary is a list of facts: sentences taken verbatim from the turns that left the verbatim window. Each fold
adds only the newly expired turns (never re-summarises what is already folded: Flowise #5873 re-summarised the
whole history every turn), then enforces a hard token cap by dropping the least valuable facts, so the summary
never grows past its limit (LangChain's summary memory did: #17888).

What the user stated is kept preferentially: a user sentence with a name, a number, a first-person statement
("my budget is", "I live in") or a decision ("we chose", "let's use") outranks anything the assistant said, and
an assistant sentence is kept only for such facts too. Among equals, newer facts win over older ones, but a
user-stated fact outranks a newer ordinary one: early facts survive a long conversation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ragcli.generation.protected_spans import find_spans
from ragcli.generation.sentence_selector import split_sentences, terms
from ragcli.types import Message, Usage

_FIRST_PERSON = re.compile(
    r"\b(?:my|mine|i\s+am|i'm|i\s+have|i've|i\s+live|i\s+work|i\s+prefer|i\s+need|i\s+want|we|our|call\s+me)\b",
    re.IGNORECASE,
)
_DECISION = re.compile(
    r"\b(?:decided?|decision|chose|choose|chosen|agreed?|let's|will\s+use|go\s+with|settled|prefer|must|"
    r"deadline|budget|remember)\b",
    re.IGNORECASE,
)
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z][\w'-]*")
_QUESTION = re.compile(r"\?\s*$")


@dataclass(frozen=True)
class Fact:
    """One sentence kept from an expired turn."""

    text: str
    role: str
    turn: int
    weight: float
    """How much it is worth keeping: user-stated facts highest (see the module docstring)."""


@dataclass(frozen=True)
class Summary:
    """A running summary: its facts in conversation order, and how many turns it has folded."""

    facts: tuple[Fact, ...] = ()
    turns_folded: int = 0
    usage: Usage = field(default_factory=Usage)
    """What producing this summary cost (0 for the extractive summariser)."""

    def render(self) -> str:
        """The summary as the text sent to the model (empty when there are no facts)."""
        if not self.facts:
            return ""
        lines = [f"- {f.role}: {f.text}" for f in self.facts]
        return "Earlier in this conversation:\n" + "\n".join(lines)


def fact_weight(sentence: str, role: str) -> float:
    """How much a sentence is worth keeping in a summary (0: not a fact worth keeping)."""
    w = 0.0
    if find_spans(sentence):
        w += 1.0  # numbers, dates, codes
    if _NAME.search(sentence):
        w += 0.6
    if _FIRST_PERSON.search(sentence):
        w += 0.8
    if _DECISION.search(sentence):
        w += 0.8
    if len(terms(sentence)) < 2:
        return 0.0
    if role == "user":
        w = w * 1.5 + 0.3
        if _QUESTION.search(sentence) and not _FIRST_PERSON.search(sentence):
            w *= 0.5  # a question asks for facts, it states none
    else:
        w *= 0.5
    return w


class ExtractiveSummarizer:
    """Folds expired turns into a capped summary of their most valuable sentences.

    Args:
        count_tokens: the target model's token counter (the cap is in its tokens).
        max_fact_words: longer sentences are cut to this many words (names and numbers come early in a
            statement; a fact is a reminder, not a transcript).
    """

    def __init__(self, count_tokens: Callable[[str], int], *, max_fact_words: int = 40) -> None:
        if max_fact_words < 4:
            raise ValueError(f"max_fact_words must be >= 4, got {max_fact_words}")
        self.count = count_tokens
        self.max_fact_words = max_fact_words

    @property
    def model_name(self) -> str:
        return "extractive"

    def fold(self, summary: Summary, turns: Sequence[Message], first_turn: int, cap_tokens: int) -> Summary:
        """Add the facts of `turns` (newly expired, in order; the first is turn `first_turn`) and enforce the cap."""
        facts = list(summary.facts)
        turn = first_turn
        for m in turns:
            for s in split_sentences(m.content):
                sentence = " ".join(m.content[s.start : s.end].split())
                words = sentence.split()
                if len(words) > self.max_fact_words:
                    sentence = " ".join(words[: self.max_fact_words]) + " …"
                w = fact_weight(sentence, m.role)
                if w > 0:
                    facts.append(Fact(sentence, m.role, turn, w))
            if m.role == "assistant":
                turn += 1
        return Summary(tuple(self.enforce_cap(facts, cap_tokens)), summary.turns_folded + _turns(turns))

    def enforce_cap(self, facts: list[Fact], cap_tokens: int) -> list[Fact]:
        """Drop the least valuable facts (oldest first among equals) until the rendered summary fits the cap."""
        facts = _dedupe(facts)
        if not facts:
            return facts
        latest = max(f.turn for f in facts)

        def value(f: Fact) -> float:
            # recency breaks ties without letting a newer small talk line beat an older stated fact
            return f.weight + 0.3 * (f.turn + 1) / (latest + 1)

        kept = list(facts)
        while kept and self.count(Summary(tuple(kept)).render()) > cap_tokens:
            kept.remove(min(kept, key=lambda f: (value(f), f.turn)))
        return kept


def _turns(messages: Sequence[Message]) -> int:
    return sum(1 for m in messages if m.role == "user")


def _dedupe(facts: list[Fact]) -> list[Fact]:
    """A sentence repeated later (the user restating a fact) is kept once, at its latest turn, at its best weight."""
    best: dict[str, Fact] = {}
    for f in facts:
        key = " ".join(terms(f.text))
        old = best.get(key)
        best[key] = (
            f if old is None else Fact(f.text, f.role, max(f.turn, old.turn), max(f.weight, old.weight))
        )
    return sorted(best.values(), key=lambda f: f.turn)
