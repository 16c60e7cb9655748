"""Who the members are (Letterboxd users with observations) and which films each one has:
what serving reads for members the models were not trained on."""

from __future__ import annotations

import duckdb
import polars as pl

from lbx_orchestration.core.observations import SEEN_KINDS
from lbx_orchestration.core.tables import REVIEWS, STG_REVIEWS
from lbx_orchestration.core.warehouse import read_frame, table_exists

MEMBER_PREFIX = "letterboxd:"


def member_key(username: str) -> str:
    return f"{MEMBER_PREFIX}{username}"


def member_keys(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every Letterboxd member with observations: bundled exports, imports, RSS."""
    if not table_exists(con, REVIEWS):
        return []
    rows = con.execute(
        f"select distinct user_key from {REVIEWS} where user_key like '{MEMBER_PREFIX}%' order by 1"
    ).fetchall()
    return [r[0] for r in rows]


OBSERVATION_SCHEMA = {"tmdb_id": pl.Int64, "rating": pl.Float64, "seen": pl.Boolean, "on_watchlist": pl.Boolean}


def member_observations(con: duckdb.DuckDBPyConnection, user_key: str) -> pl.DataFrame:
    """(tmdb_id, rating, seen, on_watchlist) per film for one member, read through dbt's
    ``stg_reviews`` view (the newest export only, each observation once, films resolved), so
    a member imported since the last dbt run is seen as user_item_interactions will see them.
    Empty before dbt's first run."""
    if not table_exists(con, STG_REVIEWS):
        return pl.DataFrame(schema=OBSERVATION_SCHEMA)
    kinds = ", ".join(f"'{k}'" for k in SEEN_KINDS)
    return read_frame(
        con,
        f"""
        select tmdb_id,
               arg_max(rating, event_at) filter (where rating is not null) as rating,
               bool_or(kind in ({kinds})) as seen,
               bool_or(kind = 'watchlist') as on_watchlist
        from {STG_REVIEWS}
        where user_key = ? and tmdb_id is not null
        group by tmdb_id
        order by tmdb_id
        """,
        [user_key],
    )


def all_member_observations_sql(table: str = STG_REVIEWS) -> str:
    """``member_observations`` for every Letterboxd member at once, with their ``user_key``: what
    the web snapshot keeps so a filtered list can fold a member in without the warehouse."""
    kinds = ", ".join(f"'{k}'" for k in SEEN_KINDS)
    return f"""
        select user_key, tmdb_id,
               arg_max(rating, event_at) filter (where rating is not null) as rating,
               bool_or(kind in ({kinds})) as seen,
               bool_or(kind = 'watchlist') as on_watchlist,
               max(event_at) filter (where kind in ({kinds})) as last_at
        from {table}
        where starts_with(user_key, '{MEMBER_PREFIX}') and tmdb_id is not null
        group by user_key, tmdb_id
        """
