"""A fake LLM for tests of plumbing: answers from a script and records every prompt it received."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

from ragcli.cost.tokens import whitespace_tokens
from ragcli.types import Completion, Message, Usage


class ScriptedLLM:
    """Replies with the next scripted answer (cycling), counts tokens as whitespace-separated words, costs $0.

    It proves plumbing, never quality. `prompts` holds the messages of each call, `max_tokens` each call's limit.
    """

    def __init__(
        self,
        replies: Sequence[str] = ("A scripted answer [1].",),
        context_window: int = 4096,
        model_name: str = "scripted",
    ) -> None:
        if not replies:
            raise ValueError("ScriptedLLM needs at least one reply, got an empty list")
        if context_window < 16:
            raise ValueError(f"context_window must be at least 16 tokens, got {context_window}")
        self._replies = list(replies)
        self._context_window = context_window
        self._model_name = model_name
        self.prompts: list[list[Message]] = []
        self.max_tokens: list[int] = []

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def context_window(self) -> int:
        return self._context_window

    @property
    def token_count_is_estimate(self) -> bool:
        return False  # whitespace words are this fake's own tokenizer

    def count_tokens(self, text: str) -> int:
        return whitespace_tokens(text)

    def _next(self, messages: Sequence[Message], max_tokens: int) -> tuple[str, Usage]:
        self.prompts.append(list(messages))
        self.max_tokens.append(max_tokens)
        reply = self._replies[(len(self.prompts) - 1) % len(self._replies)]
        words = reply.split()
        if len(words) > max_tokens:
            reply = " ".join(words[:max_tokens])
        prompt = sum(self.count_tokens(m.content) for m in messages)
        return reply, Usage(input_tokens=prompt, output_tokens=self.count_tokens(reply), usd=0.0, calls=1)

    def estimate(self, messages: Sequence[Message], max_tokens: int) -> Usage:
        """What a call can cost before it is made: a local model is free."""
        prompt = sum(self.count_tokens(m.content) for m in messages)
        return Usage(input_tokens=prompt, output_tokens=max_tokens, usd=0.0, calls=1)

    def complete(self, messages: Sequence[Message], *, max_tokens: int) -> Completion:
        t0 = time.perf_counter()
        reply, usage = self._next(messages, max_tokens)
        return Completion(reply, self._model_name, usage, time.perf_counter() - t0, provider="local")

    def stream(self, messages: Sequence[Message], *, max_tokens: int) -> Iterator[str | Completion]:
        t0 = time.perf_counter()
        reply, usage = self._next(messages, max_tokens)
        for i, word in enumerate(reply.split(" ")):
            yield word if i == 0 else " " + word
        yield Completion(reply, self._model_name, usage, time.perf_counter() - t0, provider="local")

    @property
    def last_prompt(self) -> list[Message]:
        """The messages of the most recent call (empty before the first)."""
        return self.prompts[-1] if self.prompts else []
