"""`ragcli eval history`: tokens per turn and recall of early facts over a long conversation built from real data.

The conversation: turn i takes HotpotQA question i. In the first `plant` turns the user states a fact, the first
sentence of the question's first supporting paragraph ("For the record: <sentence>"), then asks the question;
the assistant answers with the gold answer in a sentence and a sentence of a distractor paragraph (what a RAG
answer with a citation looks like). Later turns just ask and answer. A planted fact is recalled at the last turn
when what it is about (its paragraph's title, else its first numbers or codes) is still in the history sent.

Compared: the whole transcript (what `ragcli chat` sent before), the last N turns only, and `Conversation`
(last N turns + a capped extractive summary). Given an LLM, also `Conversation` with that LLM's notes as the
summary (`LLMSummarizer`) and a summary buffer as LangChain's `ConversationSummaryBufferMemory` keeps it: recent
messages verbatim up to a token limit, and each time the buffer overflows the messages pushed out are merged into
the previous summary by one LLM call that rewrites it (no cap on the summary).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ragcli.errors import InputError
from ragcli.generation.conversation import Conversation
from ragcli.generation.llm_summarizer import LLMSummarizer
from ragcli.generation.protected_spans import find_spans
from ragcli.generation.protocols import LLM
from ragcli.generation.sentence_selector import split_sentences
from ragcli.jsonl import read_objects
from ragcli.types import Completion, Message, Usage

T = TypeVar("T")


@dataclass
class HistoryReport:
    turns: int
    planted: int
    window_turns: int
    summary_cap_tokens: int
    tokens_per_turn: dict[str, list[int]] = field(default_factory=dict)
    """History tokens sent with each turn's question, per strategy."""
    recall: dict[str, float] = field(default_factory=dict)
    """Share of planted facts still in the history at the last turn, per strategy."""
    summarizer_usage: dict[str, Usage] = field(default_factory=dict)
    """What the summariser's calls cost over the whole conversation, per LLM strategy (a hidden cost)."""
    summarizer_seconds: dict[str, float] = field(default_factory=dict)


def _first_sentence(text: str) -> str:
    spans = split_sentences(text)
    return text[spans[0].start : spans[0].end] if spans else text


CHECKPOINTS = (10, 25)
"""The turns a table shows besides the last, where the conversation is longer."""
EXPECTED = "HotpotQA IRCoT rows with question_text, answers_objects and contexts (title, paragraph_text)"


def turn_columns(turns: int) -> list[int]:
    """The turns a table shows (1-based): 10 and 25 where the conversation reaches past them, and the last."""
    return [t for t in CHECKPOINTS if t < turns] + [turns]


def _last(items: Sequence[T], n: int) -> Sequence[T]:
    """The last `n` items; none for 0 (`items[-0:]` would be all of them)."""
    return items[max(0, len(items) - n) :] if n > 0 else items[:0]


def _check_row(path: Path, n: int, row: dict[str, Any]) -> None:
    """A row of another format (NQ-Open, kv) is named with its line and the keys it lacks, not a KeyError."""
    missing = [k for k in ("question_text", "answers_objects", "contexts") if k not in row]
    if not missing:
        for key, inner in (("answers_objects", ()), ("contexts", ("title", "paragraph_text"))):
            value = row[key]
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                missing.append(f"{key} as a list of objects")
            else:
                missing += sorted({f"{key}[].{k}" for v in value for k in inner if k not in v})
    if missing:
        raise InputError(
            f"{path}:{n}: not a HotpotQA IRCoT row: no {', '.join(missing)} (the line has keys "
            f"{', '.join(sorted(row)) or 'none'}); expected {EXPECTED}"
        )


def build_turns(path: Path, turns: int, plant: int) -> list[tuple[str, str, list[str]]]:
    """(user, assistant, strings that must survive) per turn, from a HotpotQA IRCoT file."""
    out: list[tuple[str, str, list[str]]] = []
    for n, row in read_objects(path, "question file", EXPECTED):
        _check_row(path, n, row)
        golds = [s for obj in row["answers_objects"] for s in obj.get("spans", [])]
        gold = [c for c in row["contexts"] if c.get("is_supporting")]
        other = [c for c in row["contexts"] if not c.get("is_supporting")]
        if not golds or not gold or not other or golds[0].lower() in ("yes", "no"):
            continue
        fact = _first_sentence(gold[0]["paragraph_text"])
        i = len(out)
        if i < plant:
            user = f"For the record: {fact} {row['question_text']}"
            title = str(gold[0]["title"])
            spans = find_spans(fact)
            must = [title] if title.lower() in fact.lower() else [fact[s.start : s.end] for s in spans[:2]]
        else:
            user = row["question_text"]
            must = []
        assistant = f"The answer is {golds[0]} [1]. {_first_sentence(other[0]['paragraph_text'])}"
        out.append((user, assistant, must))
        if len(out) >= turns:
            break
    if len(out) < turns:
        raise InputError(f"{path} holds only {len(out)} usable questions; ask for at most that many turns")
    return out


def evaluate_history(
    path: Path,
    count: Callable[[str], int],
    *,
    turns: int = 50,
    plant: int = 5,
    window_turns: int = 4,
    summary_cap_tokens: int = 200,
    llm: LLM | None = None,
    buffer_tokens: int | None = None,
    call: Callable[[Sequence[Message], int], Completion] | None = None,
) -> HistoryReport:
    """Run the strategies over the same conversation; see the module docstring.

    Args:
        llm: the summarising model for the two LLM strategies (skipped without one).
        call: how each of its calls runs (default `llm.complete`; the CLI's draws on the budget and the ledger).
        buffer_tokens: the summary buffer's verbatim limit (default: the mean size of `window_turns` turns).
    """
    if window_turns < 0:
        raise InputError(f"--window must be 0 or more turns, got {window_turns}")
    if not 1 <= plant < turns:
        raise InputError(f"--plant must be between 1 and turns-1 ({turns - 1}), got {plant}")
    data = build_turns(path, turns, plant)
    report = HistoryReport(turns, plant, window_turns, summary_cap_tokens)
    full: list[int] = []
    window: list[int] = []
    running = 0
    for user, assistant, _ in data:
        full.append(running)
        window.append(sum(count(u) + count(a) for u, a, _ in _last(data[: len(full) - 1], window_turns)))
        running += count(user) + count(assistant)
    conv = Conversation(count, window_turns=window_turns, summary_cap_tokens=summary_cap_tokens)
    ours, final_ours = _run_conversation(data, conv)
    report.tokens_per_turn = {"full transcript": full, f"last {window_turns} turns": window, "ragcli": ours}
    final_full = "\n".join(u + "\n" + a for u, a, _ in data[:-1]).lower()
    final_window = "\n".join(u + "\n" + a for u, a, _ in _last(data[:-1], window_turns)).lower()
    planted = [must for _, _, must in data[:plant]]
    finals = {"full transcript": final_full, f"last {window_turns} turns": final_window, "ragcli": final_ours}
    if llm is not None:
        limit = buffer_tokens or round(running / len(data) * window_turns)
        for name, run in (
            (f"ragcli + {llm.model_name} notes", _run_llm_notes),
            (f"summary buffer ({llm.model_name}, LangChain-style)", _run_summary_buffer),
        ):
            cost: list[Usage] = []
            t0 = time.perf_counter()
            series, final = run(
                data, count, llm, window_turns, summary_cap_tokens, limit, _costed(llm, call, cost)
            )
            report.tokens_per_turn[name] = series
            report.summarizer_usage[name] = sum(cost, Usage())
            report.summarizer_seconds[name] = time.perf_counter() - t0
            finals[name] = final
    for name, text in finals.items():
        report.recall[name] = sum(all(m.lower() in text for m in must) for must in planted) / len(planted)
    return report


Turns = list[tuple[str, str, list[str]]]
Call = Callable[[Sequence[Message], int], Completion]


def _costed(llm: LLM, call: Call | None, cost: list[Usage]) -> Call:
    """`call` (default `llm.complete`), each completion's usage appended to `cost`."""

    def run(messages: Sequence[Message], max_tokens: int) -> Completion:
        done = call(messages, max_tokens) if call else llm.complete(messages, max_tokens=max_tokens)
        cost.append(done.usage)
        return done

    return run


def _run_llm_notes(
    data: Turns, count: Callable[[str], int], llm: LLM, window: int, cap: int, _limit: int, call: Call
) -> tuple[list[int], str]:
    summarizer = LLMSummarizer(llm, count, call=call)
    conv = Conversation(count, window_turns=window, summary_cap_tokens=cap, summarizer=summarizer)
    return _run_conversation(data, conv)


def _run_conversation(data: Turns, conv: Conversation) -> tuple[list[int], str]:
    """History tokens sent with each turn, and the history the last question carries (lower-cased)."""
    series: list[int] = []
    final = ""
    for i, (user, assistant, _) in enumerate(data):
        if i == len(data) - 1:
            final = "\n".join(m.content for m in conv.history()).lower()
        series.append(conv.history_tokens())
        conv.add(user, assistant)
    return series, final


BUFFER_SYSTEM = (
    "Extend the running summary of a conversation with the new lines below, and return the whole new summary "
    "as plain prose."
)


def _run_summary_buffer(
    data: Turns, count: Callable[[str], int], _llm: LLM, _window: int, _cap: int, limit: int, call: Call
) -> tuple[list[int], str]:
    """LangChain's summary buffer: verbatim messages up to `limit` tokens; overflow is merged into the summary."""
    buffer: list[Message] = []
    summary = ""
    series: list[int] = []
    final = ""
    for i, (user, assistant, _) in enumerate(data):
        sent = ([summary] if summary else []) + [m.content for m in buffer]
        if i == len(data) - 1:
            final = "\n".join(sent).lower()
        series.append(sum(count(t) for t in sent))
        buffer += [Message("user", user), Message("assistant", assistant)]
        pushed: list[Message] = []
        while buffer and sum(count(m.content) for m in buffer) > limit:
            pushed.append(buffer.pop(0))
        if pushed:
            lines = "\n".join(f"{m.role}: {m.content}" for m in pushed)
            done = call(
                [
                    Message("system", BUFFER_SYSTEM),
                    Message("user", f"Current summary:\n{summary}\n\nNew lines:\n{lines}\n\nNew summary:"),
                ],
                256,
            )
            summary = done.text.strip()
    return series, final
