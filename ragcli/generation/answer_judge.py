"""An LLM judge for routing labels: `ragcli router labels --judge-tier N` grades the answers that have no verdict.

A router learns from per-tier verdicts (`ragcli feedback QUERY_ID good|bad`); people give few. The judge reads
each answered query that has none (its question, the sources it was given, its answer), replies good or bad, and
the verdict is stored as feedback marked with the judge's model, so a later export reuses it instead of paying
again and a person's verdict given afterwards wins (the latest verdict counts). Every judge call is metered as a
call outside a question (`metered_call`): its worst case reserved from the budget first, then a ledger row (stage
`judge`). A reply that is neither word stores nothing and is counted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ragcli.generation.protocols import LLM
from ragcli.generation.route_log import RouteLog, Unjudged
from ragcli.types import Chunk, Completion, Message

JUDGE_SYSTEM = (
    "You check answers that an assistant gave from numbered sources. Reply with one word: good when the answer "
    "is correct, answers the question and is supported by the sources; bad otherwise."
)
_VERDICT = re.compile(r"\b(good|bad)\b", re.IGNORECASE)


@dataclass
class JudgeReport:
    judged: int = 0
    good: int = 0
    bad: int = 0
    unreadable: int = 0
    usd: float = 0.0
    model: str = ""


def judge_messages(item: Unjudged, texts: dict[int, str], max_source_chars: int = 2000) -> list[Message]:
    """The judge's prompt: the question, the sources the answer was given (each cut at `max_source_chars`) and the
    answer."""
    sources = "\n\n".join(f"[{n}] {texts[n][:max_source_chars]}" for n in sorted(texts)) or "(none recorded)"
    user = (
        f"Question: {item.question}\n\nSources:\n{sources}\n\nAnswer: {item.answer}\n\n"
        "Is the answer good or bad? Reply with one word."
    )
    return [Message("system", JUDGE_SYSTEM), Message("user", user)]


def parse_verdict(text: str) -> str | None:
    """`good` or `bad`: the first of the two words in the reply; None when it holds neither."""
    m = _VERDICT.search(text)
    return m.group(1).lower() if m else None


def judge_answers(
    log: RouteLog,
    llm: LLM,
    call: Callable[[Sequence[Message], int], Completion],
    chunks_of: Callable[[Sequence[str]], dict[str, Chunk]],
    *,
    collection: str,
    limit: int = 200,
) -> JudgeReport:
    """Grade up to `limit` answered queries without a verdict with `llm`, storing each readable verdict.

    Args:
        call: `llm`'s metered call (`metered_call(stages, llm, "judge", hidden=False)`): budget and ledger.
        chunks_of: the store's `get_chunks` (sources from another collection than `collection` are not shown).
    """
    report = JudgeReport(model=llm.model_name)
    for item in log.unjudged(limit):
        ids = {n: chunk_id for n, coll, chunk_id in item.sources if coll == collection}
        found = chunks_of(list(ids.values())) if ids else {}
        texts = {n: found[c].text for n, c in ids.items() if c in found}
        completion = call(judge_messages(item, texts), 8)
        report.judged += 1
        report.usd += completion.usage.usd or 0.0
        verdict = parse_verdict(completion.text)
        if verdict is None:
            report.unreadable += 1
            continue
        log.add_feedback(item.query_id, verdict, judge=llm.model_name)
        if verdict == "good":
            report.good += 1
        else:
            report.bad += 1
    return report
