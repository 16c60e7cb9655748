"""Everything a request needs, loaded into memory from one snapshot side file: per-user
recommendation frames, films, the search index, item vectors, watchlists, lists, models."""

from __future__ import annotations

import itertools
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from lbx_orchestration.core.film_search import FilmSearch
from lbx_orchestration.core.letterboxd.lists import LIST_SCHEMA, read_lists
from lbx_orchestration.core.observations import SEEN_KINDS
from lbx_orchestration.core.search import interaction_vectors, item_vectors
from lbx_orchestration.core.seen import film_title_keys, not_tv_clause, seen_by_title, seen_title_keys
from lbx_orchestration.core.tables import RESOLUTION, STG_REVIEWS
from lbx_orchestration.core.tmdb.normalize import normalize_title
from lbx_orchestration.core.warehouse import column_exists

log = logging.getLogger(__name__)
POSTER_BASE = "https://image.tmdb.org/t/p/w342"
LETTERBOXD_TMDB = "https://letterboxd.com/tmdb/{}/"


def tmdb_online() -> bool:
    """Posters are linked only when TMDb is reachable with a key (they are TMDb's images)."""
    from lbx_orchestration.core import settings

    return settings.tmdb_live()


def _read(con: duckdb.DuckDBPyConnection, table: str) -> pl.DataFrame | None:
    tables = {r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()}
    return con.sql(f"select * from {table}").pl() if table in tables else None


@dataclass
class MemberLists:
    """Films of each member's Letterboxd lists, by lower-cased username."""

    frames: dict[str, pl.DataFrame] = field(default_factory=dict)


def resolve_list_films(lists: pl.DataFrame, resolution: pl.DataFrame, films: pl.DataFrame) -> pl.DataFrame:
    """tmdb_id per list row: by the film's boxd.it code (as resolved for the member's diary), else
    by normalised title + year among the films lbx knows (only those can be recommended)."""
    by_code = lists.join(resolution.unique("film_key").rename({"tmdb_id": "_by_code"}), on="film_key", how="left")
    catalog = (
        films.select("tmdb_id", "title", "year")
        .drop_nulls("title")
        .with_columns(pl.col("title").map_elements(normalize_title, return_dtype=pl.Utf8).alias("_norm"))
        .unique(["_norm", "year"], keep="first")
    )
    named = by_code.with_columns(
        pl.col("film_name").map_elements(normalize_title, return_dtype=pl.Utf8).alias("_norm"),
        pl.col("film_year").alias("year"),
    ).join(catalog.select("_norm", "year", pl.col("tmdb_id").alias("_by_title")), on=["_norm", "year"], how="left")
    return named.select(*LIST_SCHEMA, pl.coalesce("_by_code", "_by_title").alias("tmdb_id"))


def export_paths() -> list[Path]:
    from lbx_orchestration.core.settings import export_dirs

    roots = [Path(d) for d in export_dirs() if d]
    return [c for r in roots if r.exists() for c in sorted(r.iterdir()) if c.is_dir() or c.suffix.lower() == ".zip"]


def gather_lists(
    imports: pl.DataFrame | None, lists_dir: Path, stored: pl.DataFrame | None = None
) -> dict[str, pl.DataFrame]:
    """Lists of the members whose export lbx knows: ``stored`` (raw.letterboxd_lists, written with
    each import) wins; a warehouse imported before lbx stored lists falls back to the exports in
    LBX_EXPORT_DIRS (matched to a member through raw.letterboxd_imports' source name) and the
    lists older uploads kept in ``lists_dir`` (``<username>.parquet``)."""
    out: dict[str, pl.DataFrame] = {}
    if imports is not None and imports.height:
        by_source = {r["source_name"]: r["username"] for r in imports.iter_rows(named=True)}
        for path in export_paths():
            user = by_source.get(path.name)
            if user is None:
                continue
            try:
                out[user.lower()] = read_lists(path)
            except Exception as exc:  # a bad list file must not stop the service
                log.warning("lists of %s skipped: %s", path, exc)
    if lists_dir.exists():
        for file in lists_dir.glob("*.parquet"):
            out[file.stem.lower()] = pl.read_parquet(file)
    if stored is not None and stored.height:
        for (user,), frame in stored.partition_by("username", as_dict=True).items():
            out[str(user).lower()] = frame.select(*LIST_SCHEMA)
    return out


GENERATIONS = itertools.count(1)


class ServingData:
    def __init__(
        self,
        tables: dict[str, pl.DataFrame | None],
        lists: dict[str, pl.DataFrame],
        models_card: dict | None = None,
        previous: ServingData | None = None,
    ) -> None:
        self.generation = next(GENERATIONS)  # lists ranked on request are kept for this data only
        recs = tables.get("recommendations")
        if recs is None:
            raise ValueError("the warehouse has no serving.user_recommendations yet: materialize the graph")
        films = tables.get("films")
        if films is None:
            films = recs.select("tmdb_id", "title", "year").unique("tmdb_id")
        catalog = tables.get("catalog_films")
        if catalog is not None:
            films = pl.concat([films, catalog], how="diagonal_relaxed")
        films = films.unique("tmdb_id", keep="first").sort("tmdb_id")
        names = tables.get("film_names")
        if names is not None and "alt_titles" not in films.columns:
            films = films.join(names.unique("tmdb_id"), on="tmdb_id", how="left")
        for column, dtype in (
            ("original_title", pl.Utf8),
            ("overview", pl.Utf8),
            ("runtime", pl.Int64),
            ("poster_path", pl.Utf8),
            ("poster_url", pl.Utf8),
            ("providers", pl.List(pl.Utf8)),
            ("genres", pl.List(pl.Utf8)),
            ("directors", pl.List(pl.Utf8)),
            ("cast_top", pl.List(pl.Utf8)),
            ("keywords", pl.List(pl.Utf8)),
            ("original_language", pl.Utf8),
            ("alt_titles", pl.List(pl.Utf8)),
        ):
            if column not in films.columns:
                films = films.with_columns(pl.lit(None, dtype).alias(column))
        self.films = films
        self.film_index = {int(t): i for i, t in enumerate(films["tmdb_id"].to_list())}
        sources = tables.get("tmdb_sources")
        self.tmdb_source_kinds = sorted(sources["source_kind"].to_list()) if sources is not None else []
        self.providers_available = bool(films["providers"].is_not_null().any())
        self.provider_names = sorted({p for ps in films["providers"].drop_nulls().to_list() for p in ps})

        extra = films.select("tmdb_id", "poster_path", "poster_url", "providers")
        recs = recs.join(extra, on="tmdb_id", how="left").with_columns(
            pl.col("username").str.to_lowercase().alias("_user")
        )
        self.recommendations: dict[str, pl.DataFrame] = {}
        self.usernames: dict[str, str] = {}
        # a Letterboxd member wins over a MovieLens rater with the same name
        for (user, source), frame in recs.sort("source").partition_by(["_user", "source"], as_dict=True).items():
            if user not in self.recommendations or source == "letterboxd":
                self.recommendations[user] = frame.sort("rank")
                self.usernames[user] = frame["username"][0]
        self.rows: dict[str, list[dict]] = {}
        self.headers: dict[str, dict] = {}
        for user, frame in self.recommendations.items():
            self._shape(user, frame)
        self.genres = sorted({g for gs in recs["genres"].drop_nulls().to_list() for g in gs})
        self.decades = sorted(recs["decade"].drop_nulls().unique().to_list())

        self.new_films: dict[str, list[dict]] = {}
        new = tables.get("new_for_you")
        if new is not None:
            mine = new.filter(pl.col("source") == "letterboxd").with_columns(
                pl.col("username").str.to_lowercase().alias("_user")
            )
            for (user,), frame in mine.partition_by("_user", as_dict=True).items():
                self.new_films[str(user)] = new_film_rows(frame)

        self.watchlists: dict[str, set[int]] = {}
        watch = tables.get("watchlist")
        if watch is not None:
            for (user_key,), frame in watch.partition_by(["user_key"], as_dict=True).items():
                self.watchlists[user_key.split(":", 1)[-1].lower()] = set(frame["tmdb_id"].to_list())

        resolution = tables.get("resolution")
        if resolution is None:
            resolution = pl.DataFrame(schema={"film_key": pl.Utf8, "tmdb_id": pl.Int64})
        self.resolution = resolution
        self.lists = {u: resolve_list_films(frame, resolution, films) for u, frame in lists.items() if frame.height}

        self.seen = member_seen(tables.get("member_seen"), films)
        self.observations: dict[str, pl.DataFrame] = {}
        observed = tables.get("member_observations")
        if observed is not None:
            for (user_key,), frame in observed.partition_by("user_key", as_dict=True).items():
                self.observations[str(user_key).split(":", 1)[-1].lower()] = frame.drop("user_key")
        self.served_path = served_model_path(tables.get("model_metrics"))
        self.model_metrics = tables.get("model_metrics")
        self.models_card = models_card

        interactions = tables.get("interactions")
        # the search index and item vectors take seconds of CPU: rebuild them only when the films
        # or who saw what changed (an upload changes neither until the next refresh)
        self.fingerprint = (_fingerprint(films), _fingerprint(interactions))
        if previous is not None and previous.fingerprint == self.fingerprint:
            self.search_index, self.vectors = previous.search_index, previous.vectors
            return
        self.search_index = FilmSearch(films)
        if interactions is not None and interactions.height:
            cf, has_cf = interaction_vectors(self.film_index, interactions)
        else:
            cf, has_cf = np.zeros((films.height, 1), np.float32), np.zeros(films.height, bool)
        self.vectors = item_vectors(self.search_index.lsa.vectors, cf, has_cf)

    def _shape(self, user: str, frame: pl.DataFrame) -> None:
        """Plain rows, ready for JSON, so a request filters a Python list instead of a frame."""
        self.rows[user] = self.plain_rows(frame)
        self.headers[user] = {
            "username": frame["username"][0],
            "source": frame["source"][0],
            "model": frame["model"][0],
            "model_version": frame["model_version"][0],
            "generated_at": str(frame["generated_at"].max()),
        }

    def with_posters(self, recs: pl.DataFrame) -> pl.DataFrame:
        """serving.user_recommendations rows with the film's poster and providers."""
        extra = self.films.select("tmdb_id", "poster_path", "poster_url", "providers")
        return recs.join(extra, on="tmdb_id", how="left").sort("rank")

    @staticmethod
    def plain_rows(frame: pl.DataFrame) -> list[dict]:
        return [
            {
                "rank": r["rank"],
                "tmdb_id": r["tmdb_id"],
                "title": r["title"],
                "year": r["year"],
                "genres": list(r["genres"] or []),
                "reason": r["reason"],
                "decade": r["decade"],
                "score": round(float(r["score"]), 4) if r["score"] is not None else None,
                "poster_url": r["poster_url"],
                "poster_path": r["poster_path"],
                "providers": r["providers"],
                "letterboxd_url": LETTERBOXD_TMDB.format(r["tmdb_id"]),
            }
            for r in frame.iter_rows(named=True)
        ]

    def seen_by(self, username: str | None) -> set[int]:
        return self.seen.get(username.lower(), set()) if username else set()

    # --- lookups -------------------------------------------------------------------------
    def user(self, username: str) -> tuple[str, pl.DataFrame] | None:
        key = username.lower()
        frame = self.recommendations.get(key)
        return None if frame is None else (self.usernames[key], frame)

    def with_member(
        self,
        username: str,
        recs: pl.DataFrame,
        lists: pl.DataFrame | None,
        new_films: pl.DataFrame | None = None,
        seen: set[int] | None = None,
        observations: pl.DataFrame | None = None,
    ) -> ServingData:
        """A shallow copy that also serves ``username``'s freshly folded-in recommendations (and
        new films)."""
        clone = object.__new__(ServingData)
        clone.__dict__.update(self.__dict__)
        clone.generation = next(GENERATIONS)
        extra = self.films.select("tmdb_id", "poster_path", "poster_url", "providers")
        frame = (
            recs.join(extra, on="tmdb_id", how="left")
            .with_columns(pl.col("username").str.to_lowercase().alias("_user"))
            .sort("rank")
        )
        key = username.lower()
        clone.recommendations = {**self.recommendations, key: frame}
        clone.usernames = {**self.usernames, key: username}
        clone.rows = dict(self.rows)
        clone.headers = dict(self.headers)
        clone._shape(key, frame)
        if lists is not None and lists.height:
            clone.lists = {**self.lists, key: lists}
        if new_films is not None:
            clone.new_films = {**self.new_films, key: new_film_rows(new_films)}
        if seen is not None:
            clone.seen = {**self.seen, key: seen}
        if observations is not None:
            clone.observations = {**self.observations, key: observations}
        return clone

    def poster(self, poster_url: str | None, poster_path: str | None) -> str | None:
        if not tmdb_online():
            return None
        return poster_url or (f"{POSTER_BASE}{poster_path}" if poster_path else None)


def new_film_rows(frame: pl.DataFrame) -> list[dict]:
    """serving.new_for_you rows of one member, plain and ready for JSON, best first."""
    return [
        {
            "rank": r["rank"],
            "tmdb_id": r["tmdb_id"],
            "title": r["title"],
            "year": r["year"],
            "release_date": r["release_date"],
            "genres": list(r["genres"] or []),
            "reason": r["reason"],
            "letterboxd_url": LETTERBOXD_TMDB.format(r["tmdb_id"]),
        }
        for r in frame.sort("rank").iter_rows(named=True)
    ]


def _fingerprint(frame: pl.DataFrame | None) -> tuple[int, int] | None:
    if frame is None:
        return None
    hashed = frame.hash_rows(seed=0) if frame.height else pl.Series([], dtype=pl.UInt64)
    return frame.height, int(hashed.sum()) if frame.height else 0


def load_serving_data(side_file: Path, lists_dir: Path, previous: ServingData | None = None) -> ServingData:
    with duckdb.connect(str(side_file), read_only=True) as con:
        names = (
            "recommendations",
            "new_for_you",
            "catalog_films",
            "model_metrics",
            "films",
            "tmdb_sources",
            "film_names",
            "interactions",
            "resolution",
            "watchlist",
            "imports",
            "member_seen",
            "lists",
            "member_observations",
        )
        tables = {n: _read(con, n) for n in names}
    card = None
    served = served_model_path(tables.get("model_metrics"))
    if served is not None:
        card_path = served / "card.json"
        try:
            card = json.loads(card_path.read_text())
        except (OSError, ValueError) as exc:
            log.warning("no model card at %s: %s", card_path, exc)
    lists = gather_lists(tables.get("imports"), lists_dir, tables.get("lists"))
    return ServingData(tables, lists, card, previous)


def served_model_path(metrics: pl.DataFrame | None) -> Path | None:
    """The folder of the model members' lists come from (core.tables.accepted_model's rule)."""
    if metrics is None or metrics.height == 0:
        return None
    served = metrics.filter(pl.col("served") & pl.col("accepted")).sort("evaluated_at", descending=True)
    return Path(served["path"][0]) if served.height else None


def member_seen(seen: pl.DataFrame | None, films: pl.DataFrame) -> dict[str, set[int]]:
    """Member (lower-case name) -> TMDb ids of the films they have seen: by id, and by any title
    they logged a film under (core.seen's rule: every name, dropped subtitles, the year within one)."""
    if seen is None or seen.height == 0:
        return {}
    by_id = seen.drop_nulls("tmdb_id").select("user_key", pl.col("tmdb_id").cast(pl.Int64))
    keys = seen_title_keys(seen.select("user_key", "film_title", "film_year"))
    by_title = seen_by_title(keys, film_title_keys(films, ("title", "original_title")))
    out: dict[str, set[int]] = {}
    for key, film in pl.concat([by_id, by_title.select(by_id.columns)]).unique().iter_rows():
        out.setdefault(key.split(":", 1)[-1].lower(), set()).add(int(film))
    return out


def member_seen_sql(table: str = STG_REVIEWS, resolution: str | None = RESOLUTION) -> str:
    """Letterboxd members' seen films, by id and by the title they logged, from ``table`` (dbt's
    stg_reviews, or the snapshot's view of it); entries ``resolution`` knows as TV are left out."""
    kinds = ", ".join(f"'{k}'" for k in SEEN_KINDS)
    return (
        f"select distinct user_key, tmdb_id, film_title, film_year from {table} "
        f"where starts_with(user_key, 'letterboxd:') and kind in ({kinds})"
        + (f" and {not_tv_clause(resolution)}" if resolution else "")
    )


def read_member_seen(con: duckdb.DuckDBPyConnection, user_key: str) -> pl.DataFrame:
    """One member's seen films as the snapshot's ``member_seen`` has them (an upload is served at
    once, before the next snapshot)."""
    resolution = RESOLUTION if column_exists(con, RESOLUTION, "media_type") else None
    return con.sql(member_seen_sql(resolution=resolution) + " and user_key = ?", params=[user_key]).pl()
