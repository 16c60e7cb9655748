"""The nightly cadence at scale: a night of new ratings through `nightly_refresh_job`.

After a full refresh of a benchmark workspace, ``PER_NIGHT_USERS`` synthetic Letterboxd members
log about ``PER_USER`` rated diary entries each on the next day; the nightly job's assets run for
that scrape date (incremental dbt, no refit), and the result says how long it took and what it
changed: interaction rows, members folded in, lists rewritten.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import synth

PER_NIGHT_USERS = 100
PER_USER = 10.0


def incremental_nightly(ws: Any, community: synth.Community, resources: dict[str, Any]) -> dict[str, Any]:
    import dagster as dg

    from lbx_orchestration.core.settings import SAMPLE_SCRAPE_DATE
    from lbx_orchestration.core.tables import EXPORT_ENTRIES, INTERACTIONS, MODEL_METRICS
    from lbx_orchestration.core.warehouse import connect, replace_rows
    from lbx_orchestration.definitions import build_definitions
    from lbx_orchestration.partitions import add_scrape_date
    from lbx_orchestration.schedules import NIGHTLY_RUN_CONFIG

    day = SAMPLE_SCRAPE_DATE + dt.timedelta(days=2)  # the day after `nightly`'s reviews-only night
    entries = synth.daily_export_entries(community, day, PER_NIGHT_USERS, per_user=PER_USER, seed=23)
    keys = [f"letterboxd:{u}" for u in entries["username"].unique().to_list()]
    with connect(ws.db) as con:
        replace_rows(con, EXPORT_ENTRIES, entries, {"scrape_date": [day]})
        models_before = con.execute(f"select count(*) from {MODEL_METRICS}").fetchall()[0][0]
        rows_before = con.execute(f"select count(*) from {INTERACTIONS}").fetchall()[0][0]
    defs = build_definitions(resources)
    selected = [k.to_user_string() for k in defs.resolve_job_def("nightly_refresh_job").asset_layer.selected_asset_keys]
    assets = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition)]
    instance = dg.DagsterInstance.ephemeral()
    add_scrape_date(instance, str(day))
    started = time.perf_counter()
    result = dg.materialize(
        [*assets, *(defs.asset_checks or [])],
        resources=defs.resources,
        partition_key=str(day),
        instance=instance,
        selection=selected,
        raise_on_error=False,
        run_config=NIGHTLY_RUN_CONFIG,  # the job's own: only the new films' TMDb rows
    )
    seconds = time.perf_counter() - started
    steps = {
        s.step_key: round(s.end_time - s.start_time, 3)
        for s in instance.get_run_step_stats(result.run_id)
        if s.start_time and s.end_time
    }
    metadata = {}
    for event in result.get_asset_materialization_events():
        if event.asset_key.path[-1] == "user_recommendations":
            metadata = {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}
    with connect(ws.db, read_only=True) as con:
        models_after = con.execute(f"select count(*) from {MODEL_METRICS}").fetchall()[0][0]
        rows_after = con.execute(f"select count(*) from {INTERACTIONS}").fetchall()[0][0]
        new_users_rows = con.execute(
            f"select count(*) from {INTERACTIONS} where user_key in (select unnest(?::varchar[]))", [keys]
        ).fetchall()[0][0]
    return {
        "method": f"dagster materialize of nightly_refresh_job's assets for {day}",
        "success": bool(result.success),
        "seconds": round(seconds, 3),
        "new_ratings": int(entries.height),
        "members": len(keys),
        "interaction_rows_added": int(rows_after - rows_before),
        "interaction_rows_of_those_members": int(new_users_rows),
        "models_refitted": int(models_after - models_before),
        "members_folded_in": metadata.get("members_folded_in"),
        "steps": steps,
        "failures": [e.message[:500] for e in result.all_events if e.is_failure],
    }
