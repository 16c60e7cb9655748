"""Waiting politely for DuckDB's single-writer lock on the warehouse file.

DuckDB lets one process write a file, and a writer cannot open it while any other process has it
open (even read-only). A step that needs the file waits here with a bounded back-off, says each
time who holds the lock and how long it waits, and after the bound raises ``WarehouseLocked``
naming the file and the holder.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb

LOCK_ERROR = "Could not set lock"
_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


class WarehouseLocked(RuntimeError):
    """The warehouse stayed locked by another process for longer than the caller would wait."""


def is_lock_error(message: str) -> bool:
    return LOCK_ERROR in message


def lock_holder(message: str) -> str:
    """'<program> (PID n)' from DuckDB's lock error, or 'another process' when it does not say."""
    match = _HOLDER.search(message)
    return f"{match['program']} (PID {match['pid']})" if match else "another process"


def backoff_delays(timeout: float, first: float = 0.5, longest: float = 15.0) -> Iterator[float]:
    """Doubling waits from ``first``, at most ``longest`` each, adding up to ``timeout``."""
    remaining, delay = timeout, first
    while remaining > 0:
        step = min(delay, longest, remaining)
        yield step
        remaining -= step
        delay *= 2


def locked_message(path: Path, holder: str, waited: float, who: str) -> str:
    return (
        f"{who} could not take the write lock on the warehouse {path}: it is held by {holder}, "
        f"and was still held after {waited:.0f} s. Close that program (a SQL shell, an import or another "
        f"run that has the file open), then run again."
    )


def wait_for_write_lock(
    path: Path,
    timeout: float,
    report: Callable[[str], None],
    who: str = "dbt",
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Wait until ``path`` can be opened for writing; return the seconds waited.

    The probe connection is closed at once: the caller opens its own (dbt in a child process).
    """
    waited = 0.0
    delays = backoff_delays(timeout)
    while True:
        try:
            duckdb.connect(str(path)).close()
            if waited:
                report(f"the warehouse {path} is free after {waited:.1f} s; {who} starts")
            return waited
        except duckdb.IOException as exc:
            if not is_lock_error(str(exc)):
                raise
            holder = lock_holder(str(exc))
            delay = next(delays, None)
            if delay is None:
                raise WarehouseLocked(locked_message(path, holder, waited, who)) from exc
            report(
                f"the warehouse {path} is locked by {holder}: {who} waits {delay:.1f} s "
                f"(waited {waited:.1f} of at most {timeout:.0f} s)"
            )
            sleep(delay)
            waited += delay
