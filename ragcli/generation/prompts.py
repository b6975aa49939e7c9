"""Prompt assembly. Every part is visible and counted: nothing hidden is added to what the user configured."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ragcli.types import Message

PROMPT_PARTS = ("system", "history", "context", "question")


def user_message(context: str, question: str) -> str:
    """The user turn: numbered sources, then the question."""
    if not context:
        return f"Question: {question}"
    return f"Sources:\n{context}\n\nQuestion: {question}"


def build_messages(
    system: str, context: str, question: str, history: Sequence[Message] = ()
) -> list[Message]:
    """System prompt, prior turns, then one user turn holding the sources and the question."""
    messages: list[Message] = []
    if system:
        messages.append(Message("system", system))
    messages.extend(history)
    messages.append(Message("user", user_message(context, question)))
    return messages


def count_parts(
    count: Callable[[str], int], system: str, context: str, question: str, history: Sequence[Message] = ()
) -> dict[str, int]:
    """Tokens per prompt part, and their total. The user turn's framing words are counted with the question."""
    parts = {
        "system": count(system) if system else 0,
        "history": sum(count(m.content) for m in history),
        "context": count(context) if context else 0,
    }
    parts["question"] = max(0, count(user_message(context, question)) - parts["context"])
    parts["total"] = sum(parts.values())
    return parts
