"""Per-key token buckets, counted in events (a batch of 500 takes 500 tokens)."""

from __future__ import annotations

import math
import time


class TokenBucket:
    def __init__(self, rate_per_second: float, burst: int, clock=time.monotonic):
        self.rate, self.burst, self.clock = rate_per_second, burst, clock
        self.tokens = float(burst)
        self.updated = clock()

    def take(self, n: int) -> float:
        """Take n tokens and return 0, or take nothing and return the seconds until n are there."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if n <= self.tokens:
            self.tokens -= n
            return 0.0
        if n > self.burst:
            return math.inf
        return (n - self.tokens) / self.rate


class RateLimiter:
    def __init__(self, keys, clock=time.monotonic):
        self.buckets = {k.name: TokenBucket(k.rate_per_second, k.burst, clock) for k in keys}

    def retry_after(self, key_name: str, events: int) -> int | None:
        """0 if the key may send `events` now, else whole seconds to wait (for Retry-After), or
        None when `events` is more than the key's burst: that request can never pass."""
        wait = self.buckets[key_name].take(events)
        if wait == math.inf:
            return None
        return 0 if wait == 0 else max(1, math.ceil(min(wait, 3600)))

    def burst(self, key_name: str) -> int:
        return self.buckets[key_name].burst
