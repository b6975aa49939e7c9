"""Anthropic's Messages API (the `anthropic` extra). Same retries, budget check and error mapping as the
OpenAI-compatible adapter; the SDK is imported at the first call.

Token counts before a call are estimates (`cl100k_base`): Anthropic's tokenizer is not public. The usage that is
recorded comes from the response (`cost/provider_usage.py`): Anthropic's `input_tokens` excludes cache reads and
writes, so ragcli adds them back (its `input_tokens` counts every prompt token, as OpenAI's does), keeps the reads
in `cached_tokens` and the writes, 5-minute and 1-hour apart, in `cache_write_tokens`, each priced at its rate.
Cache breakpoints are set by `prompt_cache.plan`: only where the prefix is long enough to be cached and the write
premium pays.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ragcli.cost.prices import PriceTable
from ragcli.cost.provider_usage import anthropic_usage
from ragcli.cost.tokens import counter_for
from ragcli.errors import BackendError
from ragcli.generation.llm_common import (
    chat_dicts,
    check_model_and_timeout,
    classify_sdk_error,
    message_tokens,
)
from ragcli.generation.prompt_cache import anthropic_request_parts
from ragcli.generation.prompt_cache import plan as plan_cache
from ragcli.generation.retry import Attempt, Failure, RetryPolicy, call_with_retries
from ragcli.optional import api_key, require
from ragcli.types import Completion, Message, Usage

log = logging.getLogger(__name__)


class AnthropicLLM:
    """A Claude model through the official `anthropic` SDK, priced from the `PriceTable`."""

    provider = "anthropic"

    def __init__(
        self,
        model: str,
        prices: PriceTable,
        *,
        api_key_env: str = "ANTHROPIC_API_KEY",
        context_window: int | None = None,
        temperature: float = 0.0,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        base_url: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        check_model_and_timeout(model, "claude-haiku-4-5", timeout_s)
        self.model = model
        self.prices = prices
        self.api_key_env = api_key_env
        self.temperature = temperature
        self.timeout_s = timeout_s
        self.base_url = base_url
        self.policy = RetryPolicy(max_retries=max_retries)
        self._sleep = sleep
        self._counter = counter_for(model)
        self._context_window = context_window or prices.context_window(model) or 200_000
        self._client: Any = None
        self._key = ""

    @property
    def model_name(self) -> str:
        return self.model

    @property
    def context_window(self) -> int:
        return self._context_window

    @property
    def token_count_is_estimate(self) -> bool:
        return True

    def count_tokens(self, text: str) -> int:
        return self._counter(text) if text else 0

    def estimate(self, messages: Sequence[Message], max_tokens: int) -> Usage:
        prompt = message_tokens(self.count_tokens, messages)
        return Usage(prompt, 0, max_tokens, self.prices.estimate_usd(self.model, prompt, max_tokens), 1)

    def _get_client(self) -> Any:
        if self._client is None:
            key = api_key(self.api_key_env, what=f"{self.model} at Anthropic", config_key="llm.api_key_env")
            anthropic = require(
                "anthropic", extra="anthropic", purpose=f"llm type 'anthropic' ({self.model})"
            )
            self._key = key
            self._client = anthropic.Anthropic(
                api_key=key, base_url=self.base_url, timeout=self.timeout_s, max_retries=0
            )
        return self._client

    def _classify(self, exc: Exception) -> Failure | None:
        import anthropic

        def scrub(text: str) -> str:
            return text.replace(self._key, "***") if self._key else text

        return classify_sdk_error(
            anthropic, exc, f"{self.model} at Anthropic", self.model, self.api_key_env, self.timeout_s, scrub
        )

    def request_params(self, messages: Sequence[Message], max_tokens: int) -> dict[str, Any]:
        """The Messages API parameters of one call (also one request of a Message Batch)."""
        cache = plan_cache(self.model, messages, self.count_tokens, self.prices.price(self.model))
        if cache.after:  # content blocks carry the cache_control breakpoints
            system_blocks, chat = anthropic_request_parts(messages, cache)
            cached: dict[str, Any] = {
                "model": self.model,
                "max_tokens": max_tokens,
                "temperature": self.temperature,
                "messages": chat,
            }
            if system_blocks:
                cached["system"] = system_blocks
            return cached
        system = "\n\n".join(m.content for m in messages if m.role == "system")
        req: dict[str, Any] = {
            "model": self.model,
            "max_tokens": max_tokens,
            "temperature": self.temperature,
            "messages": chat_dicts([m for m in messages if m.role != "system"]),
        }
        if system:
            req["system"] = system
        return req

    def _usage(self, u: Any, final: Any = None) -> Usage:
        """The response's usage, priced; `final` is a stream's last `message_delta` usage (cumulative)."""
        return self.prices.priced(self.model, anthropic_usage(u, final))

    def complete(self, messages: Sequence[Message], *, max_tokens: int) -> Completion:
        client = self._get_client()
        attempts: list[Attempt] = []
        t0 = time.perf_counter()
        resp = call_with_retries(
            lambda: client.messages.create(**self.request_params(messages, max_tokens)),
            self._classify,
            self.policy,
            attempts,
            what=self.model,
            sleep=self._sleep,
        )
        text = "".join(getattr(b, "text", "") for b in resp.content)
        return Completion(
            text,
            self.model,
            self._usage(resp.usage),
            time.perf_counter() - t0,
            provider=self.provider,
            attempts=len(attempts),
        )

    def stream(self, messages: Sequence[Message], *, max_tokens: int) -> Iterator[str | Completion]:
        client = self._get_client()
        attempts: list[Attempt] = []
        t0 = time.perf_counter()
        events = call_with_retries(
            lambda: client.messages.create(**self.request_params(messages, max_tokens), stream=True),
            self._classify,
            self.policy,
            attempts,
            what=self.model,
            sleep=self._sleep,
        )
        pieces: list[str] = []
        start_usage: Any = None
        final_usage: Any = None
        try:
            for ev in events:
                kind = getattr(ev, "type", "")
                if kind == "message_start":
                    start_usage = ev.message.usage
                elif kind == "content_block_delta" and getattr(ev.delta, "text", None):
                    pieces.append(ev.delta.text)
                    yield ev.delta.text
                elif kind == "message_delta" and getattr(ev, "usage", None) is not None:
                    final_usage = ev.usage
        except Exception as exc:
            failure = self._classify(exc)
            if failure is None:
                raise
            raise BackendError(f"the stream from {self.model} broke off: {failure.error}") from exc
        usage = self._usage(start_usage, final_usage) if start_usage is not None else Usage(usd=None, calls=1)
        yield Completion(
            "".join(pieces),
            self.model,
            usage,
            time.perf_counter() - t0,
            provider=self.provider,
            attempts=len(attempts),
        )
