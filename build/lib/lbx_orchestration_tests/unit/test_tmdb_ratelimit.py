import threading

import pytest

from lbx_orchestration.core.tmdb.ratelimit import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """Most timestamps inside any half-open window [t, t + window)."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


@pytest.mark.parametrize("rate", [20.0, 7.0, 2.5, 0.5])
def test_never_more_than_rate_in_any_second(rate: float) -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate, clock=clock, sleep=clock.sleep)
    sent = []
    for i in range(200):
        if i % 17 == 0:
            clock.now += 0.37  # callers arrive irregularly, sometimes after idling
        sent.append(limiter.acquire())
        assert clock.now >= sent[-1]  # nobody is released before its slot
    if rate >= 1:
        assert max_in_window(sent) <= rate
    else:  # under one a second: one request per 1/rate seconds
        assert max_in_window(sent, 1 / rate) == 1


@pytest.mark.parametrize("rate", [20.0, 7.0, 2.5])
def test_a_busy_caller_gets_the_whole_rate(rate: float) -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate, clock=clock, sleep=clock.sleep)
    sent = [limiter.acquire() for _ in range(100)]
    assert max_in_window(sent) == int(rate)  # no tighter than it must be
    assert len(sent) / (sent[-1] - sent[0]) == pytest.approx(min(rate, int(rate)), rel=0.1)


def test_back_to_back_callers_get_evenly_spaced_slots() -> None:
    clock = FakeClock()
    limiter = RateLimiter(20, clock=clock, sleep=clock.sleep)
    sent = [limiter.acquire() for _ in range(41)]
    gaps = [b - a for a, b in zip(sent, sent[1:], strict=False)]
    assert min(gaps) == pytest.approx(0.05, abs=1e-5)
    assert sent[-1] - sent[0] == pytest.approx(2.0, abs=1e-4)


def test_threads_share_one_schedule() -> None:
    clock = FakeClock()  # frozen: reservations alone must keep the spacing
    limiter = RateLimiter(10, clock=clock, sleep=lambda s: None)
    slots: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            slot = limiter.reserve()
            with lock:
                slots.append(slot)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    slots.sort()
    assert len(slots) == 100
    assert min(b - a for a, b in zip(slots, slots[1:], strict=False)) >= 0.1 - 1e-9
    assert max_in_window(slots) <= 10


def test_defer_pauses_every_caller() -> None:
    clock = FakeClock()
    limiter = RateLimiter(20, clock=clock, sleep=clock.sleep)
    first = limiter.acquire()
    limiter.defer(3.0)
    assert limiter.acquire() == pytest.approx(first + 3.0)


@pytest.mark.parametrize("rate", [0, -1, float("inf"), float("nan")])
def test_rejects_nonsense_rates(rate: float) -> None:
    with pytest.raises(ValueError, match="positive, finite"):
        RateLimiter(rate)


def test_headroom_widens_the_window_for_send_jitter() -> None:
    clock = FakeClock()
    limiter = RateLimiter(20, clock=clock, sleep=clock.sleep, headroom=0.03)
    sent = [limiter.acquire() for _ in range(61)]
    # Even if each request left up to 30 ms after its slot, no 1 s window could hold 21.
    assert max_in_window(sent, 1.03) == 20
    assert all(b - a >= 1.03 for a, b in zip(sent, sent[20:], strict=False))
