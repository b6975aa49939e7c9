"""What the LLM adapters share: argument checks, the chat-message shape, prompt-size arithmetic and SDK errors.

The hosted adapters (`OpenAICompatibleLLM`, `AnthropicLLM`) share the SDK error mapping and the per-message
token overhead of their estimates; the local ones (`LlamaCppLLM`, `TransformersLLM`) share their argument checks
and how an answer is fitted into the context window.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ragcli.errors import BackendError, BudgetExceeded
from ragcli.generation.retry import Failure, parse_retry_after
from ragcli.resources import PACKAGED_LLM
from ragcli.types import Message

log = logging.getLogger(__name__)

MESSAGE_OVERHEAD_TOKENS = 4
"""Tokens the chat format adds per message (role and separators), used in estimates before a call."""

MIN_OUTPUT_TOKENS = 16
"""Below this much room for the answer a local model's call is refused rather than cut short."""


class MalformedResponse(ValueError):
    """The server answered 2xx with a body that is not a chat completion."""


def check_model_and_timeout(model: str, example: str, timeout_s: float) -> None:
    """Validate a hosted adapter's model name (`example` is shown in the message) and timeout."""
    if not model:
        raise ValueError(f"model must be a model name, e.g. {example!r}, got an empty string")
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")


def check_local_args(context_window: int, temperature: float) -> None:
    """Validate the window and temperature of a local model."""
    if context_window < 256:
        raise ValueError(f"context_window must be at least 256 tokens, got {context_window}")
    if not 0.0 <= temperature <= 2.0:
        raise ValueError(f"temperature must be between 0 and 2, got {temperature}")


def local_model_name(ref: str) -> str:
    """A local model's name: the packaged model's own name, else the file or folder name."""
    return ref if ref == PACKAGED_LLM else Path(ref).name


def chat_dicts(messages: Sequence[Message]) -> list[dict[str, str]]:
    """Messages as the `{"role", "content"}` dicts every chat API and chat template takes."""
    return [{"role": m.role, "content": m.content} for m in messages]


def message_tokens(count_tokens: Callable[[str], int], messages: Sequence[Message]) -> int:
    """Estimated prompt tokens: each message's content plus the chat format's per-message overhead."""
    return sum(count_tokens(m.content) + MESSAGE_OVERHEAD_TOKENS for m in messages)


def fit_output(prompt_tokens: int, max_tokens: int, *, context_window: int, model_name: str, fix: str) -> int:
    """The output tokens that fit in the window after the prompt (at most `max_tokens`).

    The chat template adds a few tokens per message that callers cannot see, so a full budget may leave slightly
    less room than they reserved: the answer is then capped, with a warning.

    Raises:
        BudgetExceeded: fewer than `MIN_OUTPUT_TOKENS` (or `max_tokens`, if smaller) are left; `fix` ends the
            message with what to change.
    """
    room = context_window - prompt_tokens
    if room < min(max_tokens, MIN_OUTPUT_TOKENS):
        raise BudgetExceeded(
            f"the prompt has {prompt_tokens} tokens and {max_tokens} are reserved for the answer, more than "
            f"{model_name}'s {context_window}-token window; {fix}"
        )
    if room < max_tokens:
        log.warning(
            "the prompt takes %d of %d tokens: the answer is capped at %d tokens instead of %d",
            prompt_tokens,
            context_window,
            room,
            max_tokens,
        )
    return min(max_tokens, room)


def _server_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return str(getattr(exc, "message", "") or exc)


def classify_sdk_error(
    sdk: Any,
    exc: Exception,
    what: str,
    model: str,
    key_env: str | None,
    timeout_s: float,
    scrub: Callable[[str], str],
) -> Failure | None:
    """Map an SDK exception to a `BackendError`, retryable or not. None: not a provider error.

    `sdk` is the `openai` or `anthropic` module: both SDKs share the same exception classes and fields.
    """
    if isinstance(exc, sdk.APITimeoutError):
        return Failure(
            BackendError(f"{what} did not answer within {timeout_s}s (llm.timeout_s)", retryable=True)
        )
    if isinstance(exc, sdk.APIConnectionError):
        return Failure(BackendError(f"cannot connect to {what}: {scrub(str(exc))}", retryable=True))
    if isinstance(exc, sdk.APIStatusError):
        status = exc.status_code
        msg = scrub(_server_message(exc))[:300]
        retry_after = parse_retry_after(dict(exc.response.headers)) if exc.response is not None else None
        if status == 401:
            src = f"${key_env}" if key_env else "the request (llm.api_key_env is null)"
            return Failure(
                BackendError(
                    f"{what} rejected the API key from {src} (401 Unauthorized); put a valid key in it",
                    status=401,
                )
            )
        if status == 403:
            return Failure(
                BackendError(f"{what} refused access (403): {msg}; check the key's permissions", status=403)
            )
        if status == 404:
            return Failure(
                BackendError(
                    f"model {model!r} was not found at {what} (404: {msg}); check llm.model and llm.base_url",
                    status=404,
                )
            )
        if status == 429:
            body = getattr(exc, "body", None)
            code = body.get("code") if isinstance(body, dict) else None
            if code == "insufficient_quota" or "quota" in msg.lower():
                return Failure(BackendError(f"{what}: quota exhausted (429): {msg}; add credit", status=429))
            return Failure(
                BackendError(f"{what} is rate limiting (429): {msg}", retryable=True, status=429), retry_after
            )
        if status >= 500 or status in (408, 409):
            return Failure(
                BackendError(f"{what} failed ({status}): {msg}", retryable=True, status=status), retry_after
            )
        return Failure(BackendError(f"{what} refused the request ({status}): {msg}", status=status))
    if isinstance(exc, MalformedResponse | json.JSONDecodeError | sdk.APIResponseValidationError):
        return Failure(
            BackendError(f"{what} sent a malformed response: {scrub(str(exc))[:200]}", retryable=True)
        )
    return None
