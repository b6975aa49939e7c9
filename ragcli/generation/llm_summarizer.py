"""A running chat summary written by a (cheap) LLM: one call per fold, over the newly expired turns only.

The model is asked for notes, one fact per line, of the turns that just left the verbatim window; the notes join
the summary as facts and the summary's hard token cap is enforced exactly as for the extractive summariser
(least valuable facts out first, user-stated names, numbers and decisions last). So, unlike LangChain's summary
buffer, it never re-summarises the summary (no drift of early facts through repeated rewriting) and never grows
past its cap (#17888). The call itself is the caller's (`call`): `ragcli chat` runs it as a hidden-cost stage of
the query budget and the ledger. Its usage is also returned with the summary. A failed or refused call falls back
to the extractive fold for those turns: a chat never stops because its summariser did.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence

from ragcli.errors import BackendError, BudgetExceeded
from ragcli.generation.extractive_summarizer import ExtractiveSummarizer, Fact, Summary, fact_weight
from ragcli.generation.protocols import LLM
from ragcli.generation.sentence_selector import split_sentences, terms
from ragcli.types import Completion, Message

log = logging.getLogger(__name__)

SYSTEM = (
    "You take notes of a conversation. Write the facts the user stated and the answers given, one short fact "
    "per line, each line starting with '- '. Copy names, numbers and dates exactly. No other text."
)
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+(.*\S)\s*$")


class LLMSummarizer:
    """Folds expired turns into the running summary with notes written by `llm`.

    Args:
        llm: the model that writes the notes (the cheapest tier).
        count_tokens: the answering model's token counter (the summary's cap is in its tokens).
        max_note_tokens: output cap of one fold's call.
        call: runs one call, `(messages, max_tokens) -> Completion` (default `llm.complete`); the CLI's runs it
            inside the query budget and writes its ledger row.
    """

    def __init__(
        self,
        llm: LLM,
        count_tokens: Callable[[str], int],
        *,
        max_note_tokens: int = 128,
        call: Callable[[Sequence[Message], int], Completion] | None = None,
    ) -> None:
        if max_note_tokens < 16:
            raise ValueError(f"max_note_tokens must be >= 16, got {max_note_tokens}")
        self.llm = llm
        self.count = count_tokens
        self.max_note_tokens = max_note_tokens
        self.call = call or (lambda messages, max_tokens: llm.complete(messages, max_tokens=max_tokens))
        self._fallback = ExtractiveSummarizer(count_tokens)

    @property
    def model_name(self) -> str:
        return self.llm.model_name

    def fold(self, summary: Summary, turns: Sequence[Message], first_turn: int, cap_tokens: int) -> Summary:
        """Add notes of `turns` (newly expired, in order; the first is turn `first_turn`), then enforce the cap."""
        lines = "\n".join(f"{m.role}: {' '.join(m.content.split())}" for m in turns)
        messages = [Message("system", SYSTEM), Message("user", f"Conversation:\n{lines}\n\nNotes:")]
        try:
            done = self.call(messages, self.max_note_tokens)
        except (BackendError, BudgetExceeded) as exc:
            log.warning("summariser %s failed (%s); folding these turns extractively", self.model_name, exc)
            return self._fallback.fold(summary, turns, first_turn, cap_tokens)
        turn = first_turn + max(
            0, sum(1 for m in turns if m.role == "user") - 1
        )  # notes date from the last turn
        notes = [Fact(text, "note", turn, note_weight(text, turns)) for text in parse_notes(done.text)]
        if not notes:  # the model wrote nothing usable: keep the facts anyway
            return self._fallback.fold(summary, turns, first_turn, cap_tokens)
        facts = self._fallback.enforce_cap([*summary.facts, *(n for n in notes if n.weight > 0)], cap_tokens)
        return Summary(
            tuple(facts), summary.turns_folded + sum(1 for m in turns if m.role == "user"), done.usage
        )


def note_weight(note: str, turns: Sequence[Message]) -> float:
    """A note is worth what the sentence it came from is worth: a fact the user stated outranks a question or an
    assistant's remark (`fact_weight` of the source sentence with the most of the note's words, by its speaker)."""
    words = set(terms(note))
    best, source, role = 0.0, note, "assistant"
    for m in turns:
        for span in split_sentences(m.content):
            sentence = m.content[span.start : span.end]
            overlap = len(words & set(terms(sentence))) / max(len(words), 1)
            if overlap > best:
                best, source, role = overlap, sentence, m.role
    return fact_weight(source, role) if best >= 0.3 else fact_weight(note, "assistant")


def parse_notes(text: str) -> list[str]:
    """The bulleted lines of a model's notes (unbulleted lines too when it wrote no bullets at all)."""
    bullets = [m.group(1) for line in text.splitlines() if (m := _BULLET.match(line))]
    if bullets:
        return bullets
    return [line.strip() for line in text.splitlines() if len(line.split()) >= 3]
