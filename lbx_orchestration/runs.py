"""Recovering from killed runs: a run that dies (kill -9, a closed terminal, an OOM kill) while a
step holds the ``duckdb`` pool's only slot would block every later run forever.

``free_dead_runs`` frees the slots (and pending claims) of runs that are finished, or whose
process is gone, and marks the dead ones failed. It runs at the start of every run, whichever
entry point started it (`dagster asset materialize`, `dagster job execute`, the UI, the daemon:
``freeing_executor`` wraps the executor every job gets), at the start of `lbx demo`, and every
30 s in the ``stale_run_sensor`` while `make ui` (dagster dev) runs.
"""

from __future__ import annotations

import ctypes
import logging
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster._core.errors import DagsterExecutionInterruptedError
from dagster._core.events import DagsterEventType
from dagster._core.execution.retries import RetryMode
from dagster._core.execution.step_dependency_config import StepDependencyConfig
from dagster._core.executor.base import Executor
from dagster._utils.interrupts import check_captured_interrupt

from lbx_orchestration.core.processes import pid_exists

POOLS = ("duckdb",)


@dataclass(frozen=True)
class FreedRun:
    run_id: str
    job_name: str
    pool: str
    why: str

    def __str__(self) -> str:
        return f"run {self.run_id[:8]} ({self.job_name}) held the {self.pool} pool but {self.why}: slot freed"


def _pid_alive(pid: int) -> bool:
    if not pid_exists(pid):
        return False
    try:  # a recycled pid belongs to some unrelated program: not our run
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return b"python" in cmdline or b"dagster" in cmdline or b"lbx" in cmdline


def _run_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The process that started the run (RUN_START), else that of its newest event.

    Under Celery a step's events carry the worker's pid, which lives on after the run (or on
    another host): the run's own process is the one that started it and coordinates the steps.
    """
    started = instance.get_records_for_run(run_id, of_type=DagsterEventType.RUN_START, limit=1).records
    for record in started:
        event = record.event_log_entry.dagster_event
        if event is not None and event.pid is not None:
            return int(event.pid)
    records = instance.get_records_for_run(run_id, ascending=False, limit=50).records
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is not None and event.pid is not None and event.event_type != DagsterEventType.RUN_ENQUEUED:
            return int(event.pid)
    return None


def free_dead_runs(instance: dg.DagsterInstance, pools: tuple[str, ...] = POOLS) -> list[FreedRun]:
    freed: list[FreedRun] = []
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return freed
    for pool in pools:
        info = storage.get_concurrency_info(pool)
        run_ids = info.active_run_ids | {step.run_id for step in info.pending_steps}
        for run_id in sorted(run_ids):
            run = instance.get_run_by_id(run_id)
            if run is None:
                why = "no longer exists"
            elif run.is_finished:
                why = f"had already ended ({run.status.value})"
            else:
                pid = _run_pid(instance, run_id)
                if pid is None or _pid_alive(pid):
                    continue
                why = f"its process (pid {pid}) is gone"
                instance.report_run_failed(
                    run,
                    f"lbx: the process running this run (pid {pid}) died; "
                    "its pool slot was freed so later runs can start",
                )
            storage.free_concurrency_slots_for_run(run_id)
            freed.append(FreedRun(run_id, run.job_name if run else "?", pool, why))
    return freed


@dg.sensor(
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Frees the duckdb pool slot of runs that were killed (or ended without freeing it) "
    "and marks them failed, so one killed run never blocks the ones after it.",
)
def stale_run_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    freed = free_dead_runs(context.instance)
    for item in freed:
        context.log.warning(str(item))
    return dg.SkipReason("; ".join(map(str, freed)) if freed else "no run holds a pool slot it should not")


class _InterruptibleExecutor(Executor):
    """Dagster's CLI captures SIGINT/SIGTERM and acts on them only when a step starts, so a run
    waiting for a pool slot that a live run holds ignored both. While this executor runs, an
    interrupt that no step picks up within a few seconds is raised in the main thread as
    Dagster's own DagsterExecutionInterruptedError, which ends the run as an interrupt would."""

    def __init__(self, inner: Executor) -> None:
        self.inner = inner

    @property
    def retries(self) -> RetryMode:
        return self.inner.retries

    @property
    def step_dependency_config(self) -> StepDependencyConfig:
        return self.inner.step_dependency_config

    def execute(self, plan_context, execution_plan) -> Iterator[dg.DagsterEvent]:
        done = threading.Event()
        watcher = threading.Thread(
            target=_raise_unheeded_interrupt, args=(threading.main_thread().ident, done), daemon=True
        )
        if threading.current_thread() is threading.main_thread():
            watcher.start()
        try:
            yield from self.inner.execute(plan_context, execution_plan)
        finally:
            done.set()


def _raise_unheeded_interrupt(main_ident: int | None, done: threading.Event, grace: float = 3.0) -> None:
    since: float | None = None
    while not done.wait(0.25):
        if not check_captured_interrupt():
            since = None
            continue
        since = since or time.monotonic()
        if time.monotonic() - since >= grace and main_ident is not None:
            # printed, not logged: the Dagster CLI's logging setup may silence other loggers
            print("lbx: interrupted while waiting for a pool slot: ending the run", file=sys.stderr, flush=True)
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(main_ident), ctypes.py_object(DagsterExecutionInterruptedError)
            )
            return


def freeing_executor(executor_def: dg.ExecutorDefinition) -> dg.ExecutorDefinition:
    """``executor_def`` that first frees the pool slots of dead runs: Dagster builds the executor
    at the start of every run, before any step asks the pool for a slot."""

    def create(init_context: dg.InitExecutorContext):
        try:
            for item in free_dead_runs(init_context.instance):
                logging.getLogger("lbx.runs").warning(str(item))
        except Exception as exc:  # a run is never stopped by its own clean-up
            logging.getLogger("lbx.runs").warning("could not check for dead runs' pool slots: %s", exc)
        inner = executor_def.executor_creation_fn(init_context)
        # Celery's loop reads its own executor's settings (app_args) and checks for interrupts
        # every second while it waits: it is used as it is
        return inner if executor_def.name == "celery" else _InterruptibleExecutor(inner)

    return dg.ExecutorDefinition(
        name=executor_def.name,
        config_schema=executor_def.config_schema,
        requirements=executor_def.get_requirements,
        executor_creation_fn=create,
        description=executor_def.description,
    )
