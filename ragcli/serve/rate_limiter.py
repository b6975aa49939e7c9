"""Requests-per-minute limits per API key: a token bucket per key, kept in this process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucketRateLimiter:
    """Allows `per_minute` requests a minute per key, in bursts of up to `per_minute`.

    Limits are per process: with `--workers N` a key may make up to N times its rate in total (the budget in
    dollars, which is what must be exact, is shared through the state store).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill time)

    def check(self, key: str, per_minute: int) -> float | None:
        """Take one request for `key`; None if allowed, else the seconds to wait before the next one is."""
        if per_minute < 1:
            raise ValueError(f"per_minute must be >= 1, got {per_minute}")
        rate = per_minute / 60.0
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(per_minute), now))
            tokens = min(float(per_minute), tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return None
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / rate
