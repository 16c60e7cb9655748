"""Who the members are (Letterboxd users with observations) and which films each one has:
what serving reads for members the models were not trained on."""

from __future__ import annotations

import duckdb
import polars as pl

from lbx_orchestration.core.observations import SEEN_KINDS
from lbx_orchestration.core.tables import RESOLUTION, REVIEWS
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


def member_observations(con: duckdb.DuckDBPyConnection, user_key: str) -> pl.DataFrame:
    """(tmdb_id, rating, seen, on_watchlist) per film for one member, as stg_reviews and
    user_item_interactions see them: only the member's newest export counts."""
    kinds = ", ".join(f"'{k}'" for k in SEEN_KINDS)
    resolution = f"left join {RESOLUTION} res on r.film_key = res.film_key" if table_exists(con, RESOLUTION) else ""
    tmdb = "coalesce(r.tmdb_id, res.tmdb_id)" if resolution else "r.tmdb_id"
    return read_frame(
        con,
        f"""
        with rows as (
            select r.*, {tmdb} as resolved_id,
                   max(scrape_date) filter (where source = 'letterboxd_export') over () as latest
            from {REVIEWS} r {resolution}
            where r.user_key = ?
        )
        select resolved_id as tmdb_id,
               arg_max(rating, event_at) filter (where rating is not null) as rating,
               bool_or(kind in ({kinds})) as seen,
               bool_or(kind = 'watchlist') as on_watchlist
        from rows
        where resolved_id is not null and (source <> 'letterboxd_export' or scrape_date = latest)
        group by resolved_id
        order by resolved_id
        """,
        [user_key],
    )
