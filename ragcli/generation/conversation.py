"""A chat conversation with a bounded history: the last N turns verbatim, older turns in a capped running summary.

    conv = Conversation.open(home, "support", count_tokens=llm.count_tokens)   # resumes if it exists
    history = conv.history()                      # summary (one system message) + the last N turns
    query = conv.retrieval_query("Which option overrides it?")   # the follow-up, with what "it" refers to
    report = conv.add("Which option overrides it?", answer_text)  # folds newly expired turns, saves
    report.saved_tokens                           # what sending the whole history would have cost more

Only turns that leave the verbatim window are folded, once each; the summary has a hard token cap. The summariser is
extractive by default (free); `LLMSummarizer`-style summarisers report their usage, which the caller records as a
hidden ledger row. The whole transcript is kept on disk (`<home>/conversations/<name>.json`) for the user; what is
sent to the model stays bounded.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from ragcli.errors import InputError
from ragcli.generation.extractive_summarizer import ExtractiveSummarizer, Fact, Summary
from ragcli.generation.sentence_selector import STOPWORDS
from ragcli.trained_models import check_name
from ragcli.types import Message, Usage

_WORD = re.compile(r"[^\W_][\w'-]*", re.UNICODE)
_ANAPHORA = frozenset(
    [
        "it",
        "its",
        "it's",
        "this",
        "that",
        "these",
        "those",
        "they",
        "them",
        "their",
        "he",
        "him",
        "his",
        "she",
        "her",
        "there",
        "same",
        "one",
        "ones",
        "former",
        "latter",
        "above",
        "previous",
    ]
)
_FOLLOW_UP_START = re.compile(
    r"^\s*(?:and|also|what about|how about|but|so|then|why|which one)\b", re.IGNORECASE
)


class Summarizer(Protocol):
    """Folds newly expired turns into a running summary under a token cap."""

    @property
    def model_name(self) -> str: ...

    def fold(
        self, summary: Summary, turns: Sequence[Message], first_turn: int, cap_tokens: int
    ) -> Summary: ...


@dataclass(frozen=True)
class Turn:
    user: str
    assistant: str


@dataclass(frozen=True)
class TurnReport:
    """What adding a turn did to the history."""

    sent_tokens: int
    """Tokens of the history the next question will carry (summary + verbatim window)."""
    full_tokens: int
    """Tokens the whole transcript would have cost."""
    folded_turns: int
    """Turns folded into the summary by this call."""
    summary_tokens: int
    summarizer_usage: Usage = field(default_factory=Usage)
    """What the summariser's call cost (a hidden cost of the conversation; 0 for the extractive one)."""

    @property
    def saved_tokens(self) -> int:
        return max(0, self.full_tokens - self.sent_tokens)


def is_follow_up(question: str) -> bool:
    """Whether a question leans on earlier turns: a pronoun or "the same" with no name, or "and/what about ..."."""
    words = [w.lower() for w in _WORD.findall(question)]
    if not words:
        return False
    if _FOLLOW_UP_START.search(question):
        return True
    return any(w in _ANAPHORA for w in words) or len([w for w in words if w not in STOPWORDS]) <= 2


class Conversation:
    """A multi-turn chat's state: the transcript, the verbatim window and the running summary.

    Args:
        count_tokens: the target model's counter.
        window_turns: turns sent verbatim (a turn = a user message and the answer).
        summary_cap_tokens: hard cap on the summary's tokens.
        summarizer: folds expired turns; default `ExtractiveSummarizer`.
        path: where the conversation is saved after each turn (`None`: in memory only).
    """

    def __init__(
        self,
        count_tokens: Callable[[str], int],
        *,
        window_turns: int = 4,
        summary_cap_tokens: int = 200,
        summarizer: Summarizer | None = None,
        path: Path | None = None,
    ) -> None:
        if window_turns < 0:
            raise ValueError(f"window_turns must be >= 0, got {window_turns}")
        if summary_cap_tokens < 0:
            raise ValueError(f"summary_cap_tokens must be >= 0, got {summary_cap_tokens}")
        self.count = count_tokens
        self.window_turns = window_turns
        self.summary_cap_tokens = summary_cap_tokens
        self.summarizer: Summarizer = summarizer or ExtractiveSummarizer(count_tokens)
        self.path = path
        self.turns: list[Turn] = []
        self.summary = Summary()
        self._full_tokens = 0

    # ------------------------------------------------------------------ persistence

    @classmethod
    def open(
        cls,
        home: Path,
        name: str,
        count_tokens: Callable[[str], int],
        **kwargs: object,
    ) -> Conversation:
        """The conversation saved under `<home>/conversations/<name>.json`, or a new one that will be saved there."""
        check_name(name, "session")  # a plain name: it becomes a file under the home
        path = Path(home) / "conversations" / f"{name}.json"
        conv = cls(count_tokens, path=path, **kwargs)  # type: ignore[arg-type]
        if path.is_file():
            conv._load(path)
        return conv

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            self.turns = [Turn(t["user"], t["assistant"]) for t in data["turns"]]
            facts = tuple(Fact(**f) for f in data["summary"]["facts"])
            self.summary = Summary(facts, int(data["summary"]["turns_folded"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(
                f"cannot read the saved conversation {path}: {exc}; delete the file to start the session anew"
            ) from None
        self._full_tokens = sum(self.count(t.user) + self.count(t.assistant) for t in self.turns)

    def save(self) -> None:
        """Write the conversation to its file atomically (a crash leaves the previous version)."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "turns": [asdict(t) for t in self.turns],
            "summary": {
                "facts": [asdict(f) for f in self.summary.facts],
                "turns_folded": self.summary.turns_folded,
            },
        }
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, self.path)

    # ------------------------------------------------------------------ history

    def window(self) -> list[Turn]:
        return self.turns[len(self.turns) - self.window_turns :] if self.window_turns else []

    def history(self) -> list[Message]:
        """What the next question carries: the summary as one system message, then the verbatim turns."""
        messages: list[Message] = []
        text = self.summary.render()
        if text:
            messages.append(Message("system", text))
        for t in self.window():
            messages += [Message("user", t.user), Message("assistant", t.assistant)]
        return messages

    def history_tokens(self) -> int:
        return sum(self.count(m.content) for m in self.history())

    def add(self, user: str, assistant: str) -> TurnReport:
        """Append a turn, fold the turns that just left the window into the summary, save; report the savings."""
        self.turns.append(Turn(user, assistant))
        self._full_tokens += self.count(user) + self.count(assistant)
        expired_until = max(0, len(self.turns) - self.window_turns)
        new = self.turns[self.summary.turns_folded : expired_until]
        usage = Usage()
        if new:
            messages = [m for t in new for m in (Message("user", t.user), Message("assistant", t.assistant))]
            before = self.summary.turns_folded
            folded = self.summarizer.fold(self.summary, messages, before, self.summary_cap_tokens)
            usage = folded.usage
            # the cap is enforced here too, whatever the summariser returned
            facts = ExtractiveSummarizer(self.count).enforce_cap(list(folded.facts), self.summary_cap_tokens)
            self.summary = Summary(tuple(facts), before + len(new))
        self.save()
        return TurnReport(
            sent_tokens=self.history_tokens(),
            full_tokens=self._full_tokens,
            folded_turns=len(new),
            summary_tokens=self.count(self.summary.render()) if self.summary.facts else 0,
            summarizer_usage=usage,
        )

    # ------------------------------------------------------------------ retrieval for follow-ups

    def retrieval_query(self, question: str, *, max_terms: int = 12) -> str:
        """The text to search with: the question itself, or for a follow-up the question plus the content words
        of the previous question and the names in the previous answer (what "it" most likely refers to)."""
        if not self.turns or not is_follow_up(question):
            return question
        asked = {w.lower() for w in _WORD.findall(question)}
        last = self.turns[-1]
        extra: list[str] = []
        for w in _WORD.findall(last.user):
            lw = w.lower()
            if lw not in STOPWORDS and lw not in asked and lw not in _ANAPHORA and lw not in extra:
                extra.append(w)
        for w in re.findall(r"\b[A-Z][\w'-]+(?:\s+[A-Z][\w'-]+)*", last.assistant):
            if w.lower() not in asked and w not in extra and w.lower() not in STOPWORDS:
                extra.append(w)
        return question if not extra else f"{question} {' '.join(extra[:max_terms])}"
