"""The cascade's answer check: is an answer grounded in the packed sources?

An answer passes when it cites at least one of the packed sources (`[n]` with n in range), when the share of its
content words that also appear in the sources reaches a floor, and (optionally) when it is not a refusal. This
is cheap, needs no model, and catches the typical small-model failures: an uncited answer, an answer made up
from outside the sources, an "I don't know".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ragcli.errors import InputError

_CITE = re.compile(r"\[(\d+)\]")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'-]*")
_REFUSAL = re.compile(
    r"\b(i (do not|don't|cannot|can't) (know|tell|answer|find)|not (contain|mention|provide)|no information|"
    r"unable to (answer|find|determine)|cannot be determined)\b",
    re.IGNORECASE,
)
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "there",
        "here",
        "which",
        "who",
        "whom",
        "whose",
        "what",
        "when",
        "where",
        "why",
        "how",
        "not",
        "no",
        "yes",
        "do",
        "does",
        "did",
        "done",
        "have",
        "has",
        "had",
        "i",
        "you",
        "he",
        "she",
        "we",
        "they",
        "them",
        "his",
        "her",
        "our",
        "their",
        "my",
        "your",
        "me",
        "us",
        "can",
        "could",
        "would",
        "should",
        "will",
        "shall",
        "may",
        "might",
        "must",
        "also",
        "than",
        "then",
        "so",
        "such",
        "very",
        "more",
        "most",
        "much",
        "many",
        "any",
        "some",
        "all",
        "each",
        "both",
        "other",
        "into",
        "about",
        "over",
        "under",
        "after",
        "before",
        "between",
        "through",
        "during",
        "above",
        "below",
        "up",
        "down",
        "out",
        "off",
        "again",
        "further",
        "once",
        "only",
        "own",
        "same",
        "too",
        "just",
        "source",
        "sources",
        "according",
        "answer",
        "question",
        "based",
    ]
)


@dataclass(frozen=True)
class CheckResult:
    """The verdict and the facts behind it (they go in the trace)."""

    ok: bool
    reason: str
    cited: int
    """Valid source numbers cited."""
    overlap: float
    """Share of the answer's content words found in the sources."""


class GroundingCheck:
    """Checks an answer against the packed context.

    Args:
        min_word_overlap: Share of content words that must appear in the sources (0 to 1).
        require_citation: Fail answers that cite no packed source.
        fail_on_refusal: Fail "I don't know" answers (so the cascade asks a stronger tier).
    """

    def __init__(
        self, min_word_overlap: float = 0.6, *, require_citation: bool = True, fail_on_refusal: bool = True
    ) -> None:
        if not 0.0 <= min_word_overlap <= 1.0:
            raise InputError(f"min_word_overlap must lie in [0, 1], got {min_word_overlap}")
        self.min_word_overlap = min_word_overlap
        self.require_citation = require_citation
        self.fail_on_refusal = fail_on_refusal

    def check(self, answer: str, context: str, n_sources: int) -> CheckResult:
        """Judge one answer against the packed context text holding `n_sources` numbered sources."""
        cited = {int(n) for n in _CITE.findall(answer) if 1 <= int(n) <= n_sources}
        words = [w.lower() for w in _WORD.findall(_CITE.sub(" ", answer))]
        content = [w for w in words if w not in _STOP and len(w) > 1]
        source_words = {w.lower() for w in _WORD.findall(context)}
        overlap = sum(w in source_words for w in content) / len(content) if content else 0.0
        if not answer.strip():
            return CheckResult(False, "empty answer", 0, 0.0)
        if self.fail_on_refusal and _REFUSAL.search(answer):
            return CheckResult(False, "the answer says it cannot answer", len(cited), overlap)
        if self.require_citation and not cited:
            return CheckResult(False, "no packed source is cited", 0, overlap)
        if overlap < self.min_word_overlap:
            return CheckResult(
                False, f"only {overlap:.0%} of its content words are in the sources", len(cited), overlap
            )
        return CheckResult(True, "grounded", len(cited), overlap)
