"""`ragcli eval history`: tokens per turn and recall of early facts over a long conversation built from real data.

The conversation: turn i takes HotpotQA question i. In the first `plant` turns the user states a fact, the first
sentence of the question's first supporting paragraph ("For the record: <sentence>"), then asks the question;
the assistant answers with the gold answer in a sentence and a sentence of a distractor paragraph (what a RAG
answer with a citation looks like). Later turns just ask and answer. A planted fact is recalled at the last turn
when what it is about (its paragraph's title, else its first numbers or codes) is still in the history sent.

Compared: the whole transcript (what `ragcli chat` sent before), the last N turns only, and `Conversation`
(last N turns + a capped extractive summary).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ragcli.errors import InputError
from ragcli.generation.conversation import Conversation
from ragcli.generation.protected_spans import find_spans
from ragcli.generation.sentence_selector import split_sentences


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


def _first_sentence(text: str) -> str:
    spans = split_sentences(text)
    return text[spans[0].start : spans[0].end] if spans else text


def build_turns(path: Path, turns: int, plant: int) -> list[tuple[str, str, list[str]]]:
    """(user, assistant, strings that must survive) per turn, from a HotpotQA IRCoT file."""
    out: list[tuple[str, str, list[str]]] = []
    for line in path.open(encoding="utf-8"):
        row = json.loads(line)
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
) -> HistoryReport:
    """Run the three strategies over the same conversation; see the module docstring."""
    if not 1 <= plant < turns:
        raise InputError(f"--plant must be between 1 and turns-1 ({turns - 1}), got {plant}")
    data = build_turns(path, turns, plant)
    conv = Conversation(count, window_turns=window_turns, summary_cap_tokens=summary_cap_tokens)
    report = HistoryReport(turns, plant, window_turns, summary_cap_tokens)
    full: list[int] = []
    window: list[int] = []
    ours: list[int] = []
    running = 0
    final_ours = ""
    for i, (user, assistant, _) in enumerate(data):
        if i == len(data) - 1:
            final_ours = "\n".join(
                m.content for m in conv.history()
            ).lower()  # what the last question carries
        full.append(running)
        window.append(sum(count(u) + count(a) for u, a, _ in data[: len(full) - 1][-window_turns:]))
        ours.append(conv.history_tokens())
        conv.add(user, assistant)
        running += count(user) + count(assistant)
    report.tokens_per_turn = {"full transcript": full, f"last {window_turns} turns": window, "ragcli": ours}
    final_full = "\n".join(u + "\n" + a for u, a, _ in data[:-1]).lower()
    final_window = "\n".join(u + "\n" + a for u, a, _ in data[:-1][-window_turns:]).lower()
    planted = [must for _, _, must in data[:plant]]
    for name, text in (
        ("full transcript", final_full),
        (f"last {window_turns} turns", final_window),
        ("ragcli", final_ours),
    ):
        report.recall[name] = sum(all(m.lower() in text for m in must) for must in planted) / len(planted)
    return report
