"""The member's present in the main list: as many recent releases as they themselves log.

Collaborative models rank the canon: the community has rated old films for decades and a
2022 film for two years, so a main list of 50 had no film from 2018 on although members log
mostly recent ones. The list therefore takes its share of recent films from the member: the
share of recent releases among their latest ``LATEST`` logged films (``member_shares``). Recent
films fill that many slots, best first by fusing the collaborative rank of the recent films it
holds with the content model's rank of recent candidates; the other slots keep the
collaborative order; both are spread evenly down the list (``quota_merge``). A member of the
classics (share 0) keeps the collaborative list as it was.

"Recent" is a release year in the catalogue's last ``RECENT_YEARS`` years (2018 to 2024 on the
bundled data, whose newest films are from 2024).
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import polars as pl

from lbx_orchestration.core.observations import SEEN_KINDS
from lbx_orchestration.core.recsys.serving.blend import RRF_K, by_user
from lbx_orchestration.core.tables import STG_REVIEWS
from lbx_orchestration.core.warehouse import read_frame, table_exists

LATEST = 100  # the member's latest logged films their share is read from
RECENT_YEARS = 7
TOLERANCE = 0.1  # the list's recent share stays within this of the member's, stock allowing


def recent_cutoff(last_year: int | None, years: int = RECENT_YEARS) -> int:
    """The first release year counted as recent."""
    return (last_year or 0) - years + 1


def member_shares(
    con: duckdb.DuckDBPyConnection, user_keys: Sequence[str], years: pl.DataFrame, cutoff: int, latest: int = LATEST
) -> dict[str, float]:
    """Each member's share of recent releases among their latest ``latest`` logged films (by the
    date they logged them); ``years`` maps tmdb_id -> year. Members with no dated film are absent."""
    if not user_keys or not table_exists(con, STG_REVIEWS):
        return {}
    kinds = ", ".join(f"'{k}'" for k in SEEN_KINDS)
    logged = read_frame(
        con,
        f"""
        select user_key, tmdb_id, max(event_date) as logged
        from {STG_REVIEWS}
        where list_contains(?::varchar[], user_key) and tmdb_id is not null and event_date is not null
          and kind in ({kinds})
        group by user_key, tmdb_id
        qualify row_number() over (partition by user_key order by max(event_date) desc, tmdb_id) <= {int(latest)}
        """,
        [list(user_keys)],
    )
    return shares_of(logged, years, cutoff, latest)


def shares_of(logged: pl.DataFrame, years: pl.DataFrame, cutoff: int, latest: int = LATEST) -> dict[str, float]:
    """``member_shares`` from the films at hand (user_key, tmdb_id, logged: when)."""
    logged = (
        logged.drop_nulls("logged")
        .sort(["user_key", "logged", "tmdb_id"], descending=[False, True, False])
        .filter(pl.int_range(pl.len()).over("user_key") < latest)
    )
    if logged.height == 0:
        return {}
    dated = logged.join(years.select("tmdb_id", "year"), on="tmdb_id", how="inner").drop_nulls("year")
    shares = dated.group_by("user_key").agg((pl.col("year") >= cutoff).mean().alias("share"))
    return dict(shares.iter_rows())


def quota_merge(
    collaborative: Sequence[int],
    recent: set[int],
    content: Sequence[int],
    share: float,
    n: int,
) -> list[tuple[int, str]]:
    """The member's list of ``n``: ``round(share * n)`` recent films (fewer when fewer are at hand)
    and collaborative films in the other slots, both spread evenly down the list. Returns
    (tmdb_id, "collaborative" | "content") pairs, best first."""
    cf = list(dict.fromkeys(collaborative))
    old = [i for i in cf if i not in recent]
    cf_recent = {i: r for r, i in enumerate((i for i in cf if i in recent), start=1)}
    score: dict[int, float] = {i: 1 / (RRF_K + r) for i, r in cf_recent.items()}
    for r, i in enumerate((i for i in dict.fromkeys(content) if i not in old), start=1):
        score[i] = score.get(i, 0.0) + 1 / (RRF_K + r)
    pool = sorted(score, key=lambda i: (-score[i], cf_recent.get(i, len(cf) + 1)))
    want = min(round(max(0.0, min(1.0, share)) * n), len(pool))
    take_old = min(n - want, len(old))
    want = min(n - take_old, len(pool))  # too few old films: recent ones fill the rest
    # the collaborative list's best film first: on a tie of positions its film goes before a recent one
    chosen = [(i, (k + 0.5) / take_old, "collaborative") for k, i in enumerate(old[:take_old])]
    chosen += [
        (i, (k + 0.5) / want, "content" if i not in cf_recent else "collaborative") for k, i in enumerate(pool[:want])
    ]
    chosen.sort(key=lambda c: c[1])
    return [(i, source) for i, _, source in chosen]


def merge_frames(
    collaborative: pl.DataFrame,
    content: pl.DataFrame,
    recent: set[int],
    shares: dict[str, float],
    n: int,
) -> pl.DataFrame:
    """``quota_merge`` on recommendation rows (``user_key``, ``rank``, ``tmdb_id`` and any other
    columns, the same in both frames), for the members ``shares`` knows; the others keep their
    collaborative rows. Ranks are renumbered from 1; ``candidate`` says which list a row came from."""
    cf = collaborative.with_columns(candidate=pl.lit("collaborative")).sort("user_key", "rank")
    cb = content.select(collaborative.columns).with_columns(candidate=pl.lit("content")).sort("user_key", "rank")
    cf_by_user, cb_by_user = by_user(cf), by_user(cb)
    parts = []
    for user in dict.fromkeys([*cf_by_user, *cb_by_user]):
        frame, share = cf_by_user.get(user, cf.clear()), shares.get(user)
        if share is None:
            parts.append(frame.head(n))
            continue
        other = cb_by_user.get(user, cb.clear())
        merged = quota_merge(frame["tmdb_id"].to_list(), recent, other["tmdb_id"].to_list(), share, n)
        pool = pl.concat([frame, other]).unique("tmdb_id", keep="first", maintain_order=True).drop("candidate")
        order = pl.DataFrame(
            {
                "tmdb_id": [i for i, _ in merged],
                "candidate": [s for _, s in merged],
                "_rank": range(1, len(merged) + 1),
            },
            schema_overrides={"tmdb_id": cf.schema["tmdb_id"]},
        )
        joined = order.join(pool, on="tmdb_id", how="left").drop("rank").rename({"_rank": "rank"})
        parts.append(joined.select(cf.columns))
    if not parts:
        return cf.clear()
    return pl.concat(parts, how="vertical_relaxed").select(cf.columns)
