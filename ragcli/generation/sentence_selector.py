"""Query-aware sentence selection: split chunks into sentences and score each against the question.

A fast lexical scorer (BM25 over the sentences of one query's hits, with stopwords dropped and a light stemmer).
Measured while planning on HotpotQA: keeping the sentences with the most word overlap kept the answer in 84 % of
questions at a third of the tokens, in about 10 ms; a 135M-parameter LM scoring perplexity did far worse and was
1,000x slower on a CPU. Granularity below the chunk is where the tokens are.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_NAME = re.compile(r"\b[A-Z][\w'-]+")
# A sentence ends at . ! ? (optionally followed by closing quotes/brackets) before whitespace, at a blank line, or
# at a line break before a list item, heading, quote or table row. A single line break inside a paragraph (hard
# wrapped text) is only a space.
_BOUNDARY = re.compile(r"(?<=[.!?])[\"'”’)\]]*\s+|\n[ \t]*\n\s*|\n(?=[ \t]*(?:[-*+•|#>]|\d+[.)]\s))")
_ABBREV = {
    "e.g", "i.e", "etc", "vs", "mr", "mrs", "ms", "dr", "prof", "st", "no", "fig", "al", "approx", "cf", "inc",
    "ltd", "jr", "sr", "vol", "pp", "ca", "eq", "sec", "ch", "u.s", "u.k",
}  # fmt: skip
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just me more most
    my myself no nor not of off on once only or other our ours ourselves out over own same she should so
    some such than that the their theirs them themselves then there these they this those through to too
    under until up very was we were what when where which while who whom why will with would you your
    yours yourself yourselves also many much one per via upon within without among onto yet may might must
    shall us""".split()  # noqa: SIM905
)


@dataclass(frozen=True)
class Sentence:
    """A sentence of a text, as a span `text[start:end]` (so trimming keeps the original characters)."""

    start: int
    end: int


def split_sentences(text: str) -> list[Sentence]:
    """Sentence spans of a text: at sentence punctuation followed by space, at blank lines and before list items.

    Rule-based and fast (no model); common abbreviations (`e.g.`, `Dr.`) and initials do not end a sentence.
    """
    spans: list[Sentence] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        end = m.start()
        after_punctuation = end > 0 and text[end - 1] in ".!?\"'”’)]"
        if (
            after_punctuation
            and "\n\n" not in text[m.start() : m.end()]
            and _is_abbreviation(text, start, end)
        ):
            continue
        _add_span(text, start, end, spans)
        start = m.end()
    _add_span(text, start, len(text), spans)
    return spans


def _is_abbreviation(text: str, start: int, end: int) -> bool:
    """Whether the period at `end-1` closes an abbreviation or an initial rather than a sentence."""
    if end <= start or text[end - 1] != ".":
        return False
    word = text[start:end].rsplit(None, 1)[-1].rstrip(".").lower()
    if word in _ABBREV:
        return True
    if word.isdigit() and text[start:end].strip().rstrip(".") == word:
        return True  # a list number: "1. step"
    return len(word) == 1 and word.isalpha()  # an initial: "J. Smith"


def _add_span(text: str, start: int, end: int, spans: list[Sentence]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append(Sentence(start, end))


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    """A light stemmer: enough to match `prices`/`price`, `founded`/`found`-style plurals and tenses."""
    for suffix, keep in (("ies", "y"), ("ing", ""), ("ed", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith(("ss", "us", "is")):
            return word[: len(word) - len(suffix)] + keep
    return word


def terms(text: str) -> list[str]:
    """Content words of a text: lowercased, stopwords dropped, lightly stemmed. Numbers are kept."""
    return [_stem(w) for w in (m.group(0).lower() for m in _WORD.finditer(text)) if w not in STOPWORDS]


class LexicalSentenceSelector:
    """Scores sentences against a question with BM25 over the given sentences (about 10 ms per query)."""

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        if k1 < 0 or not 0 <= b <= 1:
            raise ValueError(f"need k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        self.k1 = k1
        self.b = b

    def score(self, question: str, sentences: Sequence[str]) -> list[float]:
        """One score per sentence; 0 when it shares no content word with the question."""
        return self.score_terms(terms(question), [Counter(terms(s)) for s in sentences])

    def score_terms(self, query_terms: Sequence[str], docs: Sequence[Counter[str]]) -> list[float]:
        """`score` on text already split into terms (one `Counter` per sentence), to score it several times."""
        query = set(query_terms)
        if not query or not docs:
            return [0.0] * len(docs)
        n = len(docs)
        lengths = [d.total() for d in docs]
        avg_len = max(sum(lengths) / n, 1.0)
        df = Counter(t for d in docs for t in query if t in d)
        idf = {t: math.log(1.0 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in query}
        k1, b = self.k1, self.b
        scores: list[float] = []
        for d, length in zip(docs, lengths, strict=True):
            norm = k1 * (1 - b + b * length / avg_len)
            s = 0.0
            for t in query:
                tf = d.get(t, 0)
                if tf:
                    s += idf[t] * tf * (k1 + 1) / (tf + norm)
            scores.append(s)
        return scores


def expansion_terms(question: str, texts: Sequence[str], scores: Sequence[float], k: int = 2) -> list[str]:
    """Names (capitalised words) in the `k` best-scoring texts that the question lacks, as search terms.

    These are the bridge entities of multi-hop questions: for "the group that released album X was formed by
    whom?", the best sentence names the group, and the group's own paragraph says who formed it.
    """
    asked = set(terms(question))
    best = sorted(range(len(texts)), key=lambda j: -scores[j])[:k]
    found: list[str] = []
    for j in best:
        if scores[j] <= 0:
            continue
        for name in _NAME.findall(texts[j]):
            for t in terms(name):
                if t not in asked and t not in found:
                    found.append(t)
    return found
