"""Provider prompt caching on purpose: where to put Anthropic's cache breakpoints, and only where they pay.

A provider caches a prompt's *prefix*: the bytes from the start up to a point. ragcli lays prompts out stable part
first (`prompts.build_messages`: system prompt, then the conversation, then the sources, then the question), so
the system prompt is byte-identical across queries and the conversation across the turns of a chat.

OpenAI caches prefixes of 1,024 tokens or more by itself, free to write. Anthropic caches only up to a
`cache_control` breakpoint and bills the write at a premium (1.25x input for 5 minutes, 2x for 1 hour), reads at
0.1x. A breakpoint is set where the prefix is at least the model's minimum cacheable length and the reads
expected within the TTL pay back the premium:

    expected_reads x (input - read) x prefix  >  (write - input) x prefix
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ragcli.cost.price import Price
from ragcli.types import Message

Ttl = Literal["5m", "1h"]
MAX_BREAKPOINTS = 4  # Anthropic's limit per request

# Anthropic's minimum cacheable prompt length, by model name prefix (longest match first); shorter prefixes are
# processed without caching, and a write premium would buy nothing.
_MIN_TOKENS = (
    ("claude-opus-4-5", 4096),
    ("claude-haiku-4-5", 4096),
    ("claude-3-5-haiku", 2048),
    ("claude-3-haiku", 2048),
    ("claude", 1024),
)
OPENAI_MIN_TOKENS = 1024


def min_cacheable_tokens(model: str) -> int:
    """The shortest prefix the provider caches for this model (1,024 when unknown)."""
    base = model.lower().rsplit("/", 1)[-1]
    return next((n for prefix, n in _MIN_TOKENS if base.startswith(prefix)), OPENAI_MIN_TOKENS)


def pays_off(price: Price, expected_reads: float, ttl: Ttl = "5m") -> bool:
    """Whether writing a prefix to the cache costs less than sending it uncached `1 + expected_reads` times."""
    read = price.input if price.cached_input is None else price.cached_input
    write = price.input if price.cache_write is None else price.cache_write
    if ttl == "1h" and price.cache_write_1h is not None:
        write = price.cache_write_1h
    return expected_reads * (price.input - read) > (write - price.input)


@dataclass(frozen=True)
class CachePlan:
    """Where the breakpoints go: after message `i` for each `i` in `after` (indices into the messages)."""

    after: tuple[int, ...]
    ttl: Ttl
    prefix_tokens: tuple[int, ...]
    """The prefix length (tokens, counted) at each breakpoint."""
    reasons: tuple[str, ...]


def plan(
    model: str,
    messages: Sequence[Message],
    count_tokens: Callable[[str], int],
    price: Price | None,
    *,
    expected_reads: float = 1.0,
    ttl: Ttl = "5m",
) -> CachePlan:
    """Breakpoints at the end of the system prompt and at the end of the conversation so far (the last message
    before the final user turn): the two prefixes that repeat, across queries and across a chat's turns.

    `expected_reads` is how many later calls are expected to reuse a prefix within the TTL (the next turn of a
    chat; other queries in the next 5 minutes); with an unknown price nothing is cached (the premium is unknown).
    """
    if price is None or not messages:
        return CachePlan((), ttl, (), ("price unknown" if price is None else "no messages",))
    minimum = min_cacheable_tokens(model)
    cumulative: list[int] = []
    total = 0
    for m in messages:
        total += count_tokens(m.content)
        cumulative.append(total)
    candidates: list[tuple[int, str]] = []
    last_system = max((i for i, m in enumerate(messages) if m.role == "system"), default=None)
    if last_system is not None:
        candidates.append((last_system, "system prompt"))
    if len(messages) >= 2 and len(messages) - 2 != last_system and messages[-2].role != "system":
        candidates.append((len(messages) - 2, "conversation so far"))
    after: list[int] = []
    sizes: list[int] = []
    reasons: list[str] = []
    for i, what in candidates[:MAX_BREAKPOINTS]:
        if cumulative[i] < minimum:
            reasons.append(f"{what}: {cumulative[i]} tokens, under {model}'s {minimum}-token minimum")
        elif not pays_off(price, expected_reads, ttl):
            reasons.append(f"{what}: {expected_reads:g} expected read(s) do not pay the {ttl} write premium")
        else:
            after.append(i)
            sizes.append(cumulative[i])
            reasons.append(f"{what}: cached ({cumulative[i]} tokens, {ttl})")
    return CachePlan(tuple(after), ttl, tuple(sizes), tuple(reasons))


def anthropic_request_parts(
    messages: Sequence[Message], cache: CachePlan
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The Messages API's `system` blocks and `messages`, with `cache_control` at the planned breakpoints.

    System messages become text blocks of `system` (in order); the other messages keep their order, each as a
    text block (content blocks are what `cache_control` attaches to).
    """
    control: dict[str, str] = (
        {"type": "ephemeral"} if cache.ttl == "5m" else {"type": "ephemeral", "ttl": "1h"}
    )
    system: list[dict[str, Any]] = []
    chat: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        block: dict[str, Any] = {"type": "text", "text": m.content}
        if i in cache.after:
            block["cache_control"] = dict(control)
        if m.role == "system":
            system.append(block)
        else:
            chat.append({"role": m.role, "content": [block]})
    return system, chat
