"""A thread-safe request-rate limiter: never more than ``rate`` grants in any 1-second window.

Grants are scheduled, not counted after the fact: each caller reserves the next free slot
under a lock and then sleeps (outside the lock) until its slot. Two rules hold for slots:

- consecutive slots are at least ``1 / rate`` seconds apart (smooth spacing, no bursts);
- any ``cap + 1`` consecutive slots span at least one second, with ``cap = max(1, floor(rate))``,
  so a non-integer rate (2.5/s) never yields 3 grants inside one second.

``headroom`` widens that one-second window (1 + headroom seconds): a slot is when a thread is
*released*, and the request leaves a little later (wake-up and GIL delays of a few ms), so an
observer counting actual sends needs that much slack to never see ``cap + 1`` in a second.

``clock`` and ``sleep`` are injectable so tests can drive a fake clock.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

# Slots land this much past the strict bound, so float rounding (1001.37 - 1000.37 < 1.0)
# can never make a measured window hold one grant too many.
_EPSILON = 1e-6


class RateLimiter:
    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        headroom: float = 0.0,
    ) -> None:
        if not rate > 0 or math.isinf(rate):
            raise ValueError(f"rate must be a positive, finite number of requests/second: {rate!r}")
        if not 0.0 <= headroom < 1.0:
            raise ValueError(f"headroom must be in [0, 1) seconds: {headroom!r}")
        self.window = 1.0 + headroom
        self.rate = float(rate)
        self.interval = 1.0 / self.rate
        self.cap = max(1, math.floor(self.rate))
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._recent: deque[float] = deque(maxlen=self.cap)
        self._not_before = -math.inf

    def reserve(self) -> float:
        """Reserve the next slot and return it (a ``clock()`` time); does not sleep."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._not_before)
            if self._recent:
                slot = max(slot, self._recent[-1] + self.interval + _EPSILON)
            if len(self._recent) == self.cap:
                slot = max(slot, self._recent[0] + self.window + _EPSILON)
            self._recent.append(slot)
            return slot

    def acquire(self) -> float:
        """Block until this caller may send; return the granted slot."""
        slot = self.reserve()
        delay = slot - self._clock()
        if delay > 0:
            self._sleep(delay)
        return slot

    def defer(self, seconds: float) -> None:
        """Grant nothing for ``seconds`` from now (a server asked everyone to wait: Retry-After)."""
        with self._lock:
            self._not_before = max(self._not_before, self._clock() + max(0.0, seconds))
