"""A token bucket per client: ``capacity`` requests at once, refilled at ``rate`` per second."""

from __future__ import annotations

import threading
import time


class TokenBuckets:
    def __init__(self, capacity: float, rate: float, clock=time.monotonic) -> None:
        self.capacity = capacity
        self.rate = rate
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """0 if the client may go on now, else the seconds until it may."""
        with self._lock:
            now = self.clock()
            if len(self._buckets) > 10_000:  # forget clients whose bucket has refilled
                full = (self.capacity / self.rate) if self.rate > 0 else float("inf")
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full}
            tokens, at = self._buckets.get(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - at) * self.rate)
            if tokens >= 1:
                self._buckets[client] = (tokens - 1, now)
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1 - tokens) / self.rate if self.rate > 0 else float("inf")
