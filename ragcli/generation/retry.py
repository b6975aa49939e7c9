"""Retries with exponential backoff for API providers, honouring `Retry-After`; every attempt is logged.

The SDKs' own retries are turned off (`max_retries=0`) so that each attempt is visible here: in the log, and in
the `attempts` list the caller passes (its length goes on the `Completion`). Only a failed attempt is retried; failed attempts are not billed and are not ledger
rows (see `ragcli.cost.ledger`).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TypeVar

from ragcli.errors import BackendError

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Failure:
    """A failed attempt, classified: the error to raise if no retry is left, and when to retry."""

    error: BackendError
    retry_after_s: float | None = None


@dataclass(frozen=True)
class Attempt:
    """One try at a call: its number (1-based), how it ended, and how long the adapter waited after it."""

    number: int
    ok: bool
    status: int | None = None
    error: str = ""
    seconds: float = 0.0
    wait_s: float = 0.0


@dataclass(frozen=True)
class RetryPolicy:
    """`max_retries` retries after the first attempt; waits `base_s * 2**n` (with jitter), capped at `max_wait_s`.

    A server's `Retry-After` replaces the computed wait (still capped), so a rate limit is respected exactly.
    """

    max_retries: int = 3
    base_s: float = 0.5
    max_wait_s: float = 30.0
    jitter: float = 0.1

    def wait(self, retry: int, retry_after_s: float | None) -> float:
        if retry_after_s is not None:
            return min(max(retry_after_s, 0.0), self.max_wait_s)
        backoff = self.base_s * float(2**retry)
        return min(backoff * (1.0 + self.jitter * random.random()), self.max_wait_s)


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from `retry-after-ms`, `retry-after` (seconds or an HTTP date); None if absent or bad."""
    if not headers:
        return None
    lower = {k.lower(): v for k, v in headers.items()}
    ms = lower.get("retry-after-ms")
    if ms is not None:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    value = lower.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def call_with_retries(
    fn: Callable[[], T],
    classify: Callable[[Exception], Failure | None],
    policy: RetryPolicy,
    attempts: list[Attempt],
    *,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call `fn`, retrying failures that `classify` marks retryable. Appends one `Attempt` per try.

    `classify` returns None for exceptions that are not the provider's (programming errors): those propagate.
    """
    for n in range(policy.max_retries + 1):
        t0 = time.perf_counter()
        try:
            result = fn()
        except Exception as exc:
            failure = classify(exc)
            if failure is None:
                raise
            seconds = time.perf_counter() - t0
            err = failure.error
            last = n == policy.max_retries
            if not err.retryable or last:
                attempts.append(Attempt(n + 1, False, err.status, str(err), seconds))
                if err.retryable and n > 0:
                    raise BackendError(
                        f"{err} (gave up after {n + 1} attempts; raise llm.max_retries or try later)",
                        retryable=True,
                        status=err.status,
                    ) from exc
                raise err from exc
            wait = policy.wait(n, failure.retry_after_s)
            attempts.append(Attempt(n + 1, False, err.status, str(err), seconds, wait))
            log.warning(
                "%s: attempt %d of %d failed (%s); retrying in %.1fs",
                what,
                n + 1,
                policy.max_retries + 1,
                err,
                wait,
            )
            sleep(wait)
            continue
        attempts.append(Attempt(n + 1, True, seconds=time.perf_counter() - t0))
        return result
    raise AssertionError("unreachable")  # pragma: no cover
