"""The metadata group: film resolution to TMDb ids, and TMDb metadata per film.

Film metadata comes from TMDb (https://www.themoviedb.org). This product uses the TMDB API
but is not endorsed or certified by TMDB.
"""

import datetime as dt
from typing import Any

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource
from pydantic import Field

from lbx_orchestration.core.catalog import read_overrides, resolve_films, resolved_share, tv_entries, unmatched
from lbx_orchestration.core.tables import CATALOG, RESOLUTION, REVIEWS, TMDB_MOVIES, TMDB_RAW, UNRESOLVED
from lbx_orchestration.core.tmdb.flatten import flatten_many, to_json
from lbx_orchestration.core.warehouse import markdown_preview, read_frame, replace_table, table_exists
from lbx_orchestration.ingest.assets import reviews
from lbx_orchestration.resources import TmdbResource

ATTRIBUTION = "This product uses the TMDB API but is not endorsed or certified by TMDB."
# the bundled snapshot holds no film after early 2024 and only part of the older ones
MIN_RESOLVED_SHARE = 0.5


@dg.asset(
    group_name="metadata",
    kinds={"python", "duckdb"},
    pool="duckdb",
    deps=[reviews],
    description="One row per film keyed by TMDb id. MovieLens links and RSS give ids; export rows "
    "are resolved by normalised title + year against TMDb (search, or the bundled snapshot). "
    "A candidate more than a year off is refused; TV entries (live TMDb /search/tv) are kept as TV, "
    "never as a film. Unresolved, refused and ambiguous films are kept "
    f"in {UNRESOLVED} with their best candidates and the reason; a member's "
    "corrections (`lbx match`, metadata.film_overrides) win over search. " + ATTRIBUTION,
    check_specs=[
        dg.AssetCheckSpec(
            "letterboxd_resolved_share",
            asset="film_catalog",
            description=f"At least {MIN_RESOLVED_SHARE:.0%} of Letterboxd films resolve to a "
            "TMDb id; reports the share of rated films too",
        ),
    ],
)
def film_catalog(context: dg.AssetExecutionContext, duckdb: DuckDBResource, tmdb: TmdbResource) -> dg.MaterializeResult:
    with duckdb.get_connection() as con:
        films = read_frame(
            con,
            f"""
            select film_key, any_value(film_title) as film_title, any_value(film_year) as film_year,
                   max(tmdb_id) as tmdb_id, any_value(platform) as platform, count(*) as observations
            from {REVIEWS} group by film_key order by film_key
            """,
        )
        known = read_frame(con, f"select * from {RESOLUTION}") if table_exists(con, RESOLUTION) else None
        overrides = read_overrides(con)
        rated_keys = [
            r[0]
            for r in con.execute(
                f"select distinct film_key from {REVIEWS} where platform = 'letterboxd' and kind = 'rating'"
            ).fetchall()
        ]
    source = tmdb.source()
    resolutions = resolve_films(films.drop("platform", "observations"), source, known, overrides)
    # a snapshot's search index is built once per snapshot file (seconds at ML-32M size): here,
    # so that `lbx import` searches a new member's films in milliseconds
    index = getattr(source, "index", None)
    enriched = resolutions.join(films.select("film_key", "platform", "observations"), on="film_key", how="left")
    catalog = (
        enriched.filter(pl.col("tmdb_id").is_not_null())
        .sort("observations", descending=True)
        .group_by("tmdb_id", maintain_order=True)
        .agg(
            pl.col("film_title").first().alias("title"),
            pl.col("film_year").first().alias("year"),
            pl.col("platform").unique().sort().alias("platforms"),
            pl.col("film_key").len().alias("film_keys"),
            pl.col("observations").sum().alias("observations"),
        )
        .sort("tmdb_id")
    )
    unresolved = unmatched(enriched)
    letterboxd_keys = films.filter(pl.col("platform") == "letterboxd")["film_key"].to_list()
    share = resolved_share(resolutions, letterboxd_keys)
    rated_share = resolved_share(resolutions, rated_keys)
    with duckdb.get_connection() as con:
        replace_table(con, RESOLUTION, resolutions)
        replace_table(con, CATALOG, catalog)
        replace_table(con, UNRESOLVED, unresolved)
    methods = dict(resolutions.group_by("method").len().sort("method").iter_rows())
    return dg.MaterializeResult(
        metadata={
            "films": catalog.height,
            "film_keys": resolutions.height,
            "resolved_share": float(resolved_share(resolutions)),
            "letterboxd_resolved_share": share,
            "letterboxd_rated_resolved_share": rated_share,
            "refused": int((resolutions["method"] == "refused").sum()),
            "tv_entries": tv_entries(resolutions).height,
            "overrides": overrides.height,
            "unresolved_or_ambiguous": unresolved.height,
            "methods": dg.MetadataValue.json(methods),
            "tmdb_source": tmdb.describe(),
            **({"search_index": str(index.folder)} if index is not None else {}),
            "unresolved_preview": dg.MetadataValue.md(
                markdown_preview(
                    unresolved.select(
                        "film_title",
                        "film_year",
                        "method",
                        "confidence",
                        "candidate_id",
                        "candidate_title",
                        "candidate_year",
                        "reason",
                    ),
                    15,
                )
            ),
            "preview": dg.MetadataValue.md(markdown_preview(catalog)),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="letterboxd_resolved_share",
                passed=share >= MIN_RESOLVED_SHARE,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "resolved_share": share,
                    "letterboxd_films": len(letterboxd_keys),
                    "rated_resolved_share": rated_share,
                    "rated_films": len(rated_keys),
                },
            )
        ],
    )


class TmdbMoviesConfig(dg.Config):
    only_new: bool = Field(
        default=False,
        description="fetch and flatten only the catalogue's films without a row (the nightly); "
        "False rebuilds every row (the weekly retrain, a first build)",
    )


def _stored_rows(con: Any) -> tuple[pl.DataFrame, pl.DataFrame] | None:
    """The raw and flat rows already stored for films still in the catalogue, or None when
    there are none to keep (a first build)."""
    if not (table_exists(con, TMDB_RAW) and table_exists(con, TMDB_MOVIES)):
        return None
    wanted = f"where tmdb_id in (select tmdb_id from {CATALOG})"  # a semi-join: a list of 87k ids is slow
    raw = read_frame(con, f"select * from {TMDB_RAW} {wanted}")
    flat = read_frame(con, f"select * from {TMDB_MOVIES} {wanted}")
    if flat.height == 0:
        return None
    both = set(raw["tmdb_id"].to_list()) & set(flat["tmdb_id"].to_list())
    return raw.filter(pl.col("tmdb_id").is_in(both)), flat.filter(pl.col("tmdb_id").is_in(both))


def _add_new_films(
    context: dg.AssetExecutionContext,
    duckdb: DuckDBResource,
    tmdb: TmdbResource,
    ids: list[int],
    kept: tuple[pl.DataFrame, pl.DataFrame],
) -> dg.MaterializeResult:
    """The nightly's tmdb_movies: the stored rows of films still in the catalogue, plus rows for
    the films it gained. Rebuilding all 87k rows took 21 s of a 71 s night at ML-32M tenth size."""
    raw_kept, flat_kept = kept
    have = set(flat_kept["tmdb_id"].to_list())
    new_ids = [i for i in ids if i not in have]
    source = tmdb.source()
    details, stats = _fetch(context, duckdb, tmdb, source, new_ids)
    raw_new, flat_new = _frames(details, source.kind)
    raw = pl.concat([raw_kept, raw_new], how="vertical_relaxed").sort("tmdb_id")
    movies = pl.concat([flat_kept, flat_new], how="diagonal_relaxed").sort("tmdb_id")
    with duckdb.get_connection() as con:
        replace_table(con, TMDB_RAW, raw)
        replace_table(con, TMDB_MOVIES, movies)
    return dg.MaterializeResult(
        metadata={
            "tmdb_source": tmdb.describe(),
            "source_kind": source.kind,
            "only_new": True,
            "films_requested": len(new_ids),
            "films_kept": len(have),
            "films_with_metadata": movies.height,
            "missing": len(ids) - movies.height,
            "http": dg.MetadataValue.json(stats),
            "attribution": ATTRIBUTION,
        }
    )


def _fetch(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, tmdb: TmdbResource, source: Any, ids: list[int]
) -> tuple[list[dict], dict[str, Any]]:
    """TMDb's details of ``ids`` (live API, or the snapshot) and the HTTP statistics."""
    if source.kind == "live" and ids:
        from lbx_orchestration.metadata.live import fetch_live

        return fetch_live(context, duckdb, tmdb, source, ids)
    return [d for d in (source.movie_details(i) for i in ids) if d is not None], {"requests": 0}


def _frames(details: list[dict], kind: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The raw JSON rows and the flat rows of ``details``."""
    fetched_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    raw = pl.DataFrame(
        {
            "tmdb_id": [int(d["id"]) for d in details],
            "body": [to_json(d) for d in details],
            "source_kind": [kind] * len(details),
            "fetched_at": [fetched_at] * len(details),
        },
        schema={"tmdb_id": pl.Int64, "body": pl.Utf8, "source_kind": pl.Utf8, "fetched_at": pl.Datetime("us")},
    )
    return raw, flatten_many(details)


@dg.asset(
    group_name="metadata",
    kinds={"python", "duckdb"},
    pool="duckdb",
    deps=[film_catalog],
    description="TMDb movie details (genres, credits, keywords, runtime, budget ...) for every film "
    f"in the catalog, raw JSON in {TMDB_RAW} and one flat row per film in "
    f"{TMDB_MOVIES}. Live API when TMDB_API_KEY/TMDB_READ_TOKEN is set, else the bundled "
    "snapshot. " + ATTRIBUTION,
)
def tmdb_movies(
    context: dg.AssetExecutionContext, config: TmdbMoviesConfig, duckdb: DuckDBResource, tmdb: TmdbResource
) -> dg.MaterializeResult:
    with duckdb.get_connection() as con:
        ids = [r[0] for r in con.execute(f"select tmdb_id from {CATALOG} order by tmdb_id").fetchall()]
        kept = _stored_rows(con) if config.only_new else None
    if kept is not None:
        return _add_new_films(context, duckdb, tmdb, ids, kept)
    source = tmdb.source()
    details, stats = _fetch(context, duckdb, tmdb, source, ids)
    raw, movies = _frames(details, source.kind)
    with duckdb.get_connection() as con:
        replace_table(con, TMDB_RAW, raw)
        replace_table(con, TMDB_MOVIES, movies)

    def filled(col: str) -> float:
        return float(movies[col].is_not_null().mean()) if movies.height else 0.0

    return dg.MaterializeResult(
        metadata={
            "tmdb_source": tmdb.describe(),
            "source_kind": source.kind,
            "films_requested": len(ids),
            "films_with_metadata": movies.height,
            "missing": len(ids) - movies.height,
            "coverage": dg.MetadataValue.json(
                {
                    c: round(filled(c), 3)
                    for c in ("genres", "directors", "cast_top", "keywords", "runtime", "original_language", "budget")
                }
            ),
            "http": dg.MetadataValue.json(stats),
            "attribution": ATTRIBUTION,
            "preview": dg.MetadataValue.md(
                markdown_preview(movies.select("tmdb_id", "title", "year", "genres", "directors"))
            ),
        }
    )
