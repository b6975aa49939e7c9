"""Spans of a prompt that compression must never cut: numbers, dates, codes and ids, citation markers, and the
question's own names and codes.

LLMLingua's users report ids and numbers corrupted by token-level pruning (microsoft/LLMLingua #93, #149): a UUID
losing a segment, `$1,250` becoming `$1,`. Here such a span is atomic: a compressor keeps it whole or drops the
unit (sentence) that holds it, never a piece of it. Spans that name what the question asks about (a key of a
key-value list, a person in the question) also make the unit that holds them a must-keep.

Pure regular expressions, no model: about 1 ms per 1,000 tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from ragcli.generation.sentence_selector import STOPWORDS

SpanKind = Literal["number", "date", "code", "citation", "entity"]

_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
_DATE = re.compile(
    rf"\b(?:\d{{1,2}}\s+(?:{_MONTHS})\.?,?\s+\d{{2,4}}|(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{2,4}}"
    rf"|(?:{_MONTHS})\.?\s+\d{{4}}|\d{{4}}-\d{{2}}-\d{{2}}|\d{{1,2}}/\d{{1,2}}/\d{{2,4}})\b",
    re.IGNORECASE,
)
# A code or id: a word mixing letters and digits, or digits joined by - _ . / (UUIDs, SKUs, versions, ISBNs)
_CODE = re.compile(
    r"\b(?=[\w./-]*\d)(?=[\w./-]*[A-Za-z_-])[A-Za-z0-9][\w./-]*[A-Za-z0-9]\b|\b[A-Z]{2,}[-_][A-Z0-9]+\b"
)
# A number with its sign, currency, thousands separators, decimals and unit marks: `$1,250.50`, `-3`, `45 %`
_NUMBER = re.compile(r"[-+]?[$€£¥]?\d+(?:[.,]\d+)*(?:\s?%|[kKmMbB]\b)?")
_CITATION = re.compile(r"\[\d+(?:\s*[,–-]\s*\d+)*\]")
_QUOTED = re.compile(r"[\"“']([^\"”']{2,80})[\"”']")
_CAPITALISED = re.compile(r"\b[A-Z][\w'’.-]*(?:\s+(?:of|the|de|von|van|and|&)?\s*[A-Z][\w'’.-]*)*")
_QUESTION_WORDS = frozenset(
    [
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "is",
        "are",
        "was",
        "were",
        "do",
        "does",
        "did",
        "the",
        "a",
        "an",
        "in",
        "on",
        "of",
        "for",
        "and",
        "or",
        "if",
        "can",
        "could",
        "should",
        "would",
        "will",
        "name",
        "list",
        "give",
        "tell",
    ]
)


@dataclass(frozen=True)
class Span:
    """A protected span `text[start:end]` and what it is."""

    start: int
    end: int
    kind: SpanKind


def question_keys(question: str) -> list[str]:
    """The strings of a question that its answer's unit must contain: codes, quoted strings and names.

    `What is the value of key "4ef2-..."?` gives the key; `Who founded Acme Corp in 1990?` gives `Acme Corp`
    and `1990`. Capitalised question words ("What", "Who") and function words that open a sentence ("He",
    "This", "The") are not names.
    """
    keys: list[str] = []
    for m in _QUOTED.finditer(question):
        keys.append(m.group(1).strip())
    for m in _CODE.finditer(question):
        keys.append(m.group(0))
    for m in _CAPITALISED.finditer(question):
        words = m.group(0).split()
        while words and (
            words[0].lower() in _QUESTION_WORDS or (words[0].lower() in STOPWORDS and not words[0].isupper())
        ):
            words.pop(0)  # "He", "This" open a sentence; "US" and "IT" stay names
        name = " ".join(words).rstrip(".'’")
        if len(name) >= 2:
            keys.append(name)
    for m in _NUMBER.finditer(question):
        if len(m.group(0).strip("+-")) >= 2:
            keys.append(m.group(0))
    unique: list[str] = []
    seen: set[str] = set()
    for k in keys:
        if k and k.lower() not in seen:
            seen.add(k.lower())
            unique.append(k)
    return unique


def find_spans(text: str, keys: list[str] | tuple[str, ...] = ()) -> list[Span]:
    """Every protected span of `text`, sorted and non-overlapping (a longer span wins over one inside it).

    Args:
        text: the prompt part to protect.
        keys: strings from the question (`question_keys`) protected wherever they occur as whole words,
            case-insensitively (the name `Ed` is not protected inside `used`).
    """
    found: list[Span] = []
    for pattern, kind in (
        (_CITATION, "citation"),
        (_DATE, "date"),
        (_CODE, "code"),
        (_NUMBER, "number"),
    ):
        for m in pattern.finditer(text):
            if m.end() > m.start():
                found.append(Span(m.start(), m.end(), kind))  # type: ignore[arg-type]
    for key in keys:
        if key:
            for m in _key_pattern(key).finditer(text):
                found.append(Span(m.start(), m.end(), "entity"))
    found.sort(key=lambda s: (s.start, -(s.end - s.start)))
    merged: list[Span] = []
    for s in found:
        if merged and s.start < merged[-1].end:
            last = merged[-1]
            if s.end > last.end:  # overlapping spans join into one atomic span, the first one's kind
                merged[-1] = Span(last.start, s.end, last.kind)
            continue
        merged.append(s)
    return merged


def key_hits(text: str, keys: list[str] | tuple[str, ...]) -> int:
    """How many of the question's keys occur in `text` as whole words (case-insensitive)."""
    return sum(1 for k in keys if k and _key_pattern(k).search(text))


@lru_cache(maxsize=4096)
def _key_pattern(key: str) -> re.Pattern[str]:
    """`key` as a whole word or phrase, case-insensitive: not inside a longer word or number."""
    return re.compile(rf"(?<![\w]){re.escape(key)}(?![\w])", re.IGNORECASE)
