"""Processes seen through /proc (Linux): which children a process has, and whether one still runs."""

from __future__ import annotations

import time
from pathlib import Path

PROC = Path("/proc")


def _state_and_parent(pid: int | str) -> tuple[str, int] | None:
    try:
        fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        return fields[0], int(fields[1])
    except (OSError, IndexError, ValueError):
        return None


def alive(pid: int) -> bool:
    """Running: a zombie has exited, only its parent's wait() is missing."""
    found = _state_and_parent(pid)
    return found is not None and found[0] != "Z"


def children_of(parent: int, word: str | None = None) -> list[int]:
    """The living children of ``parent``; with ``word``, only those with it as an argument."""
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        stat = _state_and_parent(entry.name)
        if stat is None or stat[1] != parent or stat[0] == "Z":
            continue
        if word is not None:
            try:
                if word.encode() not in (entry / "cmdline").read_bytes().split(b"\0"):
                    continue
            except OSError:
                continue
        found.append(int(entry.name))
    return found


def outlives(pid: int, seconds: float, poll: float = 0.05) -> bool:
    """Whether ``pid`` still runs after up to ``seconds`` of waiting for it to end."""
    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(poll)
    return alive(pid)
