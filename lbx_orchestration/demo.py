"""`make demo`: materialize every asset (and run every check) on the bundled data."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import dagster as dg

from lbx_orchestration.core.settings import SAMPLE_SCRAPE_DATE, dagster_home, duckdb_path
from lbx_orchestration.core.tables import RECOMMENDATIONS
from lbx_orchestration.core.warehouse import connect
from lbx_orchestration.partitions import add_scrape_date
from lbx_orchestration.runs import free_dead_runs


def materialize_graph(
    defs: dg.Definitions, instance: dg.DagsterInstance, partition: str, **kwargs: Any
) -> dg.ExecuteInProcessResult:
    """Every asset and check for one scrape date: what "Materialize all" in the UI runs."""
    add_scrape_date(instance, partition)
    # tmdb_catalog has release-month partitions: catalog_months materializes it on its own
    assets = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition) and not _is_monthly(a)]
    return dg.materialize(
        [*assets, *(defs.asset_checks or [])],
        resources=defs.resources,
        partition_key=partition,
        instance=instance,
        raise_on_error=False,
        # everything, as the weekly retrain: dbt from scratch, not the nightly's increment
        run_config={"ops": {"dbt_features": {"config": {"full_refresh": True}}}},
        **kwargs,
    )


def materialize_everything(partition: str = str(SAMPLE_SCRAPE_DATE)) -> int:
    from lbx_orchestration.definitions import defs

    instance = dg.DagsterInstance.get() if dagster_home() else dg.DagsterInstance.ephemeral()
    for freed in free_dead_runs(instance):
        print(f"recovered: {freed}")
    started = time.perf_counter()
    catalog_months(instance)
    result = materialize_graph(defs, instance, partition, tags={"lbx/origin": "make-demo"})
    elapsed = time.perf_counter() - started
    checks = result.get_asset_check_evaluations()
    failed = [f"{c.asset_key.to_user_string()}:{c.check_name}" for c in checks if not c.passed]
    print(
        f"\nMaterialized {len(result.get_asset_materialization_events())} assets and ran "
        f"{len(checks)} checks in {elapsed:.0f} s: {'success' if result.success else 'FAILED'}."
    )
    if failed:
        print("Checks that did not pass: " + ", ".join(failed))
    if not result.success:
        return 1
    db = duckdb_path()
    with connect(db, read_only=True) as con:
        users = con.execute(f"select count(distinct username) from {RECOMMENDATIONS}").fetchall()[0][0]
        letterboxd = [
            r[0]
            for r in con.execute(
                f"select distinct username from {RECOMMENDATIONS} where source = 'letterboxd' order by 1"
            ).fetchall()
        ]
    who = letterboxd[0] if letterboxd else "1"
    query = f"select rank, title, year, reason from {RECOMMENDATIONS} where username = '{who}' order by rank limit 10"
    print(f"""
Where to look
  DuckDB file : {db}
  members     : {users} ({", ".join(letterboxd)})
  try         : .venv/bin/lbx recs {who}
                .venv/bin/lbx sql \"{query}\"   (or .venv/bin/lbx sql for a SQL shell)
  the UI      : make ui   (dg dev, then open http://127.0.0.1:3000)
""")
    return 0


def catalog_months(instance: dg.DagsterInstance, months: int = 24) -> None:
    """The catalogue's last ``months`` release months (of the snapshot offline, up to today live) in
    one run: what serving.new_for_you draws from."""
    from lbx_orchestration.definitions import defs
    from lbx_orchestration.metadata.catalog import tmdb_catalog

    first, last = catalog_range(months)
    result = dg.materialize(
        [tmdb_catalog],
        resources=defs.resources,
        instance=instance,
        raise_on_error=False,
        tags={
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last,
            "lbx/origin": "make-demo",
        },
    )
    print(f"tmdb_catalog {first[:7]}..{last[:7]}: {'success' if result.success else 'FAILED'}")


def catalog_range(months: int = 24) -> tuple[str, str]:
    """The first and last release-month partition keys of the catalogue's last ``months``."""
    from lbx_orchestration.definitions import defs

    source = defs.resources["tmdb"].source()
    today = dt.datetime.now(dt.UTC).date()
    if source.kind == "live":
        last = today
    else:
        dates = [r.get("release_date") or "" for r in source.records.values()]
        last = max((dt.date.fromisoformat(d) for d in dates if len(d) == 10 and d <= today.isoformat()), default=today)
    index = last.year * 12 + last.month - 1 - (months - 1)
    first = dt.date(index // 12, index % 12 + 1, 1)
    return first.isoformat(), last.replace(day=1).isoformat()


def _is_monthly(asset: dg.AssetsDefinition) -> bool:
    return isinstance(asset.partitions_def, dg.MonthlyPartitionsDefinition)
