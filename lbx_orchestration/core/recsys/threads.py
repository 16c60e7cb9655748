"""How many threads the numeric models may use: ``LBX_THREADS``, else every core.

EASE's inversion and implicit's ALS give the same result whatever the thread count (each
user's solve is independent); LightFM with several threads is not bit-reproducible (see
its module): ``LBX_THREADS=1`` when that matters.
"""

import os

from lbx_orchestration.core.settings import threads


def default_threads() -> int:
    chosen = threads()
    if chosen is not None:
        return chosen
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
