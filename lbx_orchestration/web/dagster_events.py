"""A web upload tells the Dagster instance what it did, with the same events as `lbx import`
(``ingest/member_events.py``): the day's ``reviews`` partition and ``user_recommendations``.

Reported on one background thread, after the answer: the first report imports dagster and
opens the instance (seconds), which an upload should not wait for, and reports never overlap.
A failed report is logged; the upload has succeeded all the same.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from lbx_orchestration.core.members import Onboarded

log = logging.getLogger(__name__)

#: what the events name as the export's path: the upload's temporary file is gone by then
WEB_UPLOAD = "web upload (POST /api/imports)"

_reporter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lbx-dagster-events")


def _report(done: Onboarded) -> Path | None:
    try:
        # the Dagster layer, imported on the reporter thread only: the web app itself stays on core/
        from lbx_orchestration.ingest.member_events import report_to_dagster

        return report_to_dagster(done, WEB_UPLOAD)
    except Exception as exc:
        log.warning(
            "imported %s, but the Dagster instance was not told (%s: %s)", done.report.username, type(exc).__name__, exc
        )
        return None


def report_upload(done: Onboarded) -> Future[Path | None]:
    """Queue the upload's events; the future gives the instance's folder (None: no instance)."""
    return _reporter.submit(_report, done)


def drain(timeout: float = 60.0) -> None:
    """Wait until every report queued so far is done (reports run in order, one at a time)."""
    _reporter.submit(lambda: None).result(timeout)
