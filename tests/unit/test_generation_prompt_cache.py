"""Prompt layout for provider caching, and Anthropic breakpoints set only where they pay."""

from __future__ import annotations

from ragcli.cost.price import Price
from ragcli.generation.prompt_cache import anthropic_request_parts, min_cacheable_tokens, pays_off, plan
from ragcli.generation.prompts import build_messages
from ragcli.types import Message, Usage

SONNET = Price(
    "claude-sonnet-4-5", input=3.0, output=15.0, cached_input=0.3, cache_write=3.75, cache_write_1h=6.0
)


def words(n: int) -> str:
    return " ".join(f"w{i}" for i in range(n))


def count(text: str) -> int:
    return len(text.split())


def test_the_stable_part_comes_first_and_is_byte_identical_across_calls() -> None:
    system = "Answer only from the numbered sources. " + words(50)
    history = [Message("user", "What is X?"), Message("assistant", "X is a thing [1].")]
    a = build_messages(system, "[1] a.md\nalpha", "What about Y?", history)
    b = build_messages(system, "[1] b.md\nbeta", "And Z?", history)
    assert a[:3] == b[:3]  # system, then the conversation: the cacheable prefix
    assert a[-1].role == "user" and a[-1].content.endswith("Question: What about Y?")  # question last
    assert a[-1].content.index("Sources:") < a[-1].content.index("Question:")


def test_minimum_cacheable_prefix_per_model() -> None:
    assert min_cacheable_tokens("claude-sonnet-4-5-20250929") == 1024
    assert min_cacheable_tokens("claude-haiku-4-5") == 4096
    assert min_cacheable_tokens("anthropic/claude-3-5-haiku-latest") == 2048


def test_write_premium_pays_back_with_one_read_not_with_none() -> None:
    assert pays_off(SONNET, 1.0) and not pays_off(SONNET, 0.0)
    # the 1-hour write costs 2x input: one read (saving 0.9x) does not pay it back, two do
    assert not pays_off(SONNET, 1.0, "1h") and pays_off(SONNET, 2.0, "1h")
    # the arithmetic behind it: write once + read once costs less than sending the prefix twice
    once = SONNET.cost_of(Usage(3000, 0, 0, None, 1, cache_write_tokens=3000)) + SONNET.cost_of(
        Usage(3000, 3000, 0, None, 1)
    )
    assert once < 2 * SONNET.cost_of(Usage(3000, 0, 0, None, 1))


def test_short_system_prompt_gets_no_breakpoint_and_says_why() -> None:
    msgs = build_messages("Be brief.", "[1] a\nb", "q?")
    p = plan("claude-sonnet-4-5", msgs, count, SONNET)
    assert p.after == () and "minimum" in p.reasons[0]


def test_long_system_prompt_and_long_chat_get_breakpoints() -> None:
    history = [Message("user", words(600)), Message("assistant", words(600))]
    msgs = build_messages(words(1100), "[1] a\nb", "q?", history)
    p = plan("claude-sonnet-4-5", msgs, count, SONNET)
    assert p.after == (0, 2) and p.prefix_tokens == (1100, 2300)
    assert plan("claude-haiku-4-5", msgs, count, SONNET).after == ()  # under Haiku 4.5's 4096 minimum
    assert plan("claude-sonnet-4-5", msgs, count, None).after == ()  # unknown price: no premium paid blind
    assert plan("claude-sonnet-4-5", msgs, count, SONNET, expected_reads=0).after == ()


def test_request_blocks_carry_cache_control_at_the_breakpoints() -> None:
    history = [Message("user", words(600)), Message("assistant", words(600))]
    msgs = build_messages(words(1100), "[1] a\nb", "q?", history)
    system, chat = anthropic_request_parts(
        msgs, plan("claude-sonnet-4-5", msgs, count, SONNET, expected_reads=2, ttl="1h")
    )
    assert system[0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert [m["role"] for m in chat] == ["user", "assistant", "user"]
    assert "cache_control" in chat[1]["content"][0] and "cache_control" not in chat[2]["content"][0]
    assert "cache_control" not in chat[0]["content"][0]
