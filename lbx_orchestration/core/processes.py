"""Whether a process still exists: for freeing what a killed process left behind."""

from __future__ import annotations

import os


def pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True
