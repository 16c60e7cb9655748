"""Serving from the content model: the films lbx knows (catalogue and logged), each member's
top films among candidates with reasons (members onboarded since the model was fitted are
folded in), and ``serving.new_for_you``'s films. ``content_blend`` blends them into lists."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import scipy.sparse as sp

from lbx_orchestration.core.member_films import member_observations
from lbx_orchestration.core.recsys.data.content_features import PLAIN_WORDS, WORD, FeatureSpace, film_tokens
from lbx_orchestration.core.recsys.data.overview_embedding import CACHE_FILE, embed_overviews
from lbx_orchestration.core.recsys.models.pipeline import TrainedModel, latest_path, load_trained
from lbx_orchestration.core.recsys.serving.changed import changed_since_training
from lbx_orchestration.core.recsys.serving.new_films import (
    MEANING,
    FoldedUsers,
    content_recommendations,
    explain_rows,
    rated_films,
)
from lbx_orchestration.core.recsys.serving.recommend import confidence_rows, read_seen_title_keys
from lbx_orchestration.core.recsys.serving.serve import ServingPolicy
from lbx_orchestration.core.seen import film_title_keys, seen_recommendations
from lbx_orchestration.core.settings import cache_dir
from lbx_orchestration.core.tables import INTERACTIONS, REVIEWS, TMDB_CATALOG, TMDB_MOVIES
from lbx_orchestration.core.tmdb.flatten import TMDB_MOVIE_SCHEMA
from lbx_orchestration.core.warehouse import read_frame, table_exists

#: the content model's folder under the models directory, and its feature space file
CONTENT_ALIAS = "content"
FEATURE_SPACE_FILE = "feature_space.json"

FILM_COLUMNS = [c for c in TMDB_MOVIE_SCHEMA if c not in ("poster_path", "poster_url", "providers")]


def known_films(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Flat TMDb rows of every film lbx knows: the catalogue first, then the films logged."""
    frames = [
        read_frame(con, f"select {_columns_of(con, table)} from {table}")
        for table in (TMDB_CATALOG, TMDB_MOVIES)
        if table_exists(con, table)
    ]
    if not frames:
        raise RuntimeError(f"neither {TMDB_CATALOG} nor {TMDB_MOVIES} exists: materialize the metadata group first")
    films = pl.concat(frames, how="vertical_relaxed").unique("tmdb_id", keep="first", maintain_order=True)
    return films.filter(pl.col("media_type").fill_null("movie") == "movie")


def _columns_of(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """FILM_COLUMNS, with nulls for the ones a table written by an older lbx lacks."""
    schema, name = table.split(".")
    have = {
        r[0]
        for r in con.execute(
            "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
            [schema, name],
        ).fetchall()
    }
    dtypes = {"collection": "varchar", "companies": "varchar[]"}
    return ", ".join(c if c in have else f"cast(null as {dtypes.get(c, 'varchar')}) as {c}" for c in FILM_COLUMNS)


def released_within(films: pl.DataFrame, months: int, today: dt.date | None = None) -> tuple[pl.DataFrame, dt.date]:
    """Films released in the last ``months`` months of the catalogue (up to ``today``)."""
    today = today or dt.datetime.now(dt.UTC).date()
    dated = films.with_columns(_date=release_day()).filter(pl.col("_date").is_not_null() & (pl.col("_date") <= today))
    if dated.height == 0:
        return dated.drop("_date"), today
    last = dated["_date"].max()
    assert isinstance(last, dt.date)
    start = _months_before(last, months)
    return dated.filter(pl.col("_date") > start).drop("_date"), start


def release_day() -> pl.Expr:
    """``release_date`` (TMDb's ISO text) as a date; null when absent or malformed."""
    return pl.col("release_date").str.to_date("%Y-%m-%d", strict=False)


def released_by(day: dt.date | None) -> pl.Expr:
    """Films out on ``day`` (every film when None; a film without a date only then)."""
    if day is None:
        return pl.lit(True)
    return release_day() <= day


def _months_before(day: dt.date, months: int) -> dt.date:
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    return dt.date(year, month + 1, min(day.day, 28))


def load_content(models_dir: Path) -> tuple[TrainedModel, FeatureSpace]:
    """The latest content model and its feature space; FileNotFoundError before the first fit."""
    path = latest_path(Path(models_dir), CONTENT_ALIAS)
    return load_trained(path), FeatureSpace.load(path / FEATURE_SPACE_FILE)


class CandidatePool:
    """Films a list may take, with their feature rows and title keys worked out once."""

    def __init__(self, films: pl.DataFrame, features: sp.csr_matrix) -> None:
        self.films, self.features = films, features
        self._index = {int(t): i for i, t in enumerate(films["tmdb_id"].to_list())}
        self._title_keys: pl.DataFrame | None = None

    def rows(self, candidates: pl.DataFrame) -> sp.csr_matrix:
        """The feature rows of ``candidates``, films of this pool."""
        return self.features[np.asarray([self._index[int(t)] for t in candidates["tmdb_id"].to_list()], dtype=np.int64)]

    def title_keys(self) -> pl.DataFrame:
        """``core.seen.film_title_keys`` of the pool's films."""
        if self._title_keys is None:
            self._title_keys = film_title_keys(self.films)
        return self._title_keys


@dataclass
class ContentContext:
    """What the blend and the new films both read: loaded once when one call does both
    (onboarding), since at ML-32M size the model and the known films take seconds to read."""

    trained: TrainedModel
    space: FeatureSpace
    films: pl.DataFrame  # known_films
    common: frozenset[str]  # common_words(films): left out of the reasons
    # each film's tokens once worked out (a long-lived caller, the web app, ranks on request)
    tokens: dict[int, dict] = field(default_factory=dict)
    pools: dict[tuple, CandidatePool] = field(default_factory=dict)  # by the rule that drew them

    def pool(self, key: tuple, draw: Callable[[pl.DataFrame], pl.DataFrame]) -> CandidatePool:
        """The candidates ``draw`` takes from the known films, kept under ``key`` (the rule's
        settings) with their feature rows."""
        if (pool := self.pools.get(key)) is None:
            films = draw(self.films)
            pool = self.pools[key] = CandidatePool(films, self.space.transform(films))
        return pool

    def prime(self, pool: CandidatePool) -> None:
        """Work out ``pool``'s tokens and title keys now, before anyone waits for them."""
        _tokens_of(self.films, pool.films["tmdb_id"], self.common, self.tokens)
        pool.title_keys()

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection, models_dir: Path) -> ContentContext:
        """FileNotFoundError before the first content model."""
        trained, space = load_content(models_dir)
        films = known_films(con)
        return cls(trained, space, films, frozenset(common_words(films)))


def content_rows(
    con: duckdb.DuckDBPyConnection,
    context: ContentContext,
    candidates: pl.DataFrame,
    user_keys: list[str],
    watchlist: str,
    top_n: int,
    explain: bool = True,
) -> tuple[pl.DataFrame, Callable[[pl.DataFrame], pl.Series]]:
    """Each user's top ``top_n`` of ``candidates`` by the content model, seen (and watchlisted
    when excluded) films left out, with reasons (or, without ``explain``, a function that
    gives the reasons of the rows one keeps). Members the model was not trained on (onboarded
    since), or whose films changed since it was (a film logged or re-rated), are folded in from
    their own films. The order fuses the model's with the candidates'
    TMDb votes (``new_films.with_prior``)."""
    trained = context.trained
    interactions = read_frame(  # these users' films only: at ML-32M size everyone's do not fit
        con,
        f"select user_key, tmdb_id, rating, seen, on_watchlist from {INTERACTIONS} "
        "where list_contains(?::varchar[], user_key)",
        [list(user_keys)],
    )
    index = {k: i for i, k in enumerate(trained.interactions.user_ids.astype(str))}
    trained_users = [k for k in user_keys if k in index]
    mine = interactions.filter(pl.col("user_key").is_in(trained_users))
    newcomers = [k for k in user_keys if k not in index]
    if newcomers:
        theirs = _observations_of(con, newcomers, interactions)
        mine = pl.concat([mine, theirs], how="vertical_relaxed")
        with_films = set(theirs.filter(pl.col("seen"))["user_key"].to_list())
        newcomers = [k for k in newcomers if k in with_films]  # nothing matched: nothing to go on
    changed = changed_since_training(con, trained.interactions, trained_users)
    trained_users = [k for k in trained_users if k not in changed]
    folded = [*newcomers, *(k for k in user_keys if k in changed)]
    return score_content(context, candidates, mine, trained_users, folded, watchlist, top_n, explain)


def score_content(
    context: ContentContext,
    candidates: pl.DataFrame,
    mine: pl.DataFrame,
    trained_users: list[str],
    folded: list[str],
    watchlist: str,
    top_n: int,
    explain: bool = True,
    features: sp.csr_matrix | None = None,
) -> tuple[pl.DataFrame, Callable[[pl.DataFrame], pl.Series]]:
    """``content_rows`` once the users' films are at hand (``mine``: user_key, tmdb_id, rating,
    seen, on_watchlist): ``trained_users`` are scored from the model's own rows, ``folded`` ones
    folded in from ``mine``; ``features``: the candidates' rows when known. No warehouse: the web
    app ranks one member on request with it."""
    trained, films = context.trained, context.films
    index = {k: i for i, k in enumerate(trained.interactions.user_ids.astype(str))}
    drop = pl.col("seen") | (pl.col("on_watchlist") if watchlist == "exclude" else pl.lit(False))
    excluded: dict[str, set[int]] = {}
    for key, film in mine.filter(drop).select("user_key", "tmdb_id").iter_rows():
        excluded.setdefault(key, set()).add(int(film))
    theirs = films.filter(pl.col("tmdb_id").is_in(mine["tmdb_id"].unique().implode()))
    titles = dict(theirs.select("tmdb_id", "title").iter_rows())
    needed = pl.concat([candidates["tmdb_id"], mine["tmdb_id"]]).unique()
    tokens = _tokens_of(films, needed, context.common, context.tokens)
    rated = rated_films(mine, titles, tokens)
    features = context.space.transform(candidates) if features is None else features
    ids = candidates["tmdb_id"].to_numpy()
    ranks = vote_ranks(candidates)
    # (model, its rows of the users, which rows, whose): trained users, then the folded-in ones
    groups = [(trained.model, trained.interactions.matrix, np.array([index[k] for k in trained_users]), trained_users)]
    if folded:
        seen = mine.filter(pl.col("seen"))
        rows = confidence_rows(seen, np.array(folded, dtype=object), trained.interactions.item_ids)
        groups.append((FoldedUsers(trained.model, rows), rows, np.arange(len(folded)), folded))
    parts = [
        content_recommendations(
            model,
            train,
            np.asarray(idx, dtype=np.int64),
            keys,
            ids,
            features,
            excluded,
            rated,
            tokens,
            top_n,
            explain,
            ranks,
        )
        for model, train, idx, keys in groups
    ]
    return pl.concat(parts), lambda rows: explain_rows(rows, rated, tokens)


def vote_ranks(candidates: pl.DataFrame) -> np.ndarray:
    """Each candidate's rank by TMDb vote count (1 the most voted; ties share the best rank)."""
    votes = candidates["vote_count"].fill_null(0).cast(pl.Float64)
    return votes.rank(method="min", descending=True).to_numpy().astype(np.float64)


#: an overview word more of the known films use says nothing a reason could name ("great", "however")
COMMON_WORD_SHARE = 0.01


def common_words(films: pl.DataFrame) -> set[str]:
    """Overview words more than ``COMMON_WORD_SHARE`` of ``films`` use, and the ``PLAIN_WORDS``."""
    words = (
        films.select(pl.col("overview").str.to_lowercase().str.extract_all(WORD.pattern).list.unique().alias("w"))
        .explode("w")
        .drop_nulls()
        .group_by("w")
        .len()
    )
    return set(words.filter(pl.col("len") > COMMON_WORD_SHARE * films.height)["w"].to_list()) | PLAIN_WORDS


def film_tokens_with_meaning(films: pl.DataFrame, common: set[str] | frozenset[str] = frozenset()) -> dict[int, dict]:
    """Each film's tokens (``film_tokens``) without the ``common`` overview words, and its
    overview's meaning, for the reasons."""
    vectors = embed_overviews(films["overview"].to_list(), cache_dir() / CACHE_FILE)
    tokens = {}
    for r, v in zip(films.iter_rows(named=True), vectors, strict=True):
        t = film_tokens(r)
        t["word"] = [w for w in t["word"] if w not in common]
        tokens[int(r["tmdb_id"])] = {**t, MEANING: v}
    return tokens


def _tokens_of(
    films: pl.DataFrame, ids: pl.Series, common: set[str] | frozenset[str], known: dict[int, dict]
) -> dict[int, dict]:
    """``known`` (film -> tokens), with ``ids``' tokens worked out if they were not yet."""
    missing = films.filter(pl.col("tmdb_id").is_in(ids) & ~pl.col("tmdb_id").is_in(list(known)))
    if missing.height:
        known.update(film_tokens_with_meaning(missing, common))
    return known


def _observations_of(con: duckdb.DuckDBPyConnection, user_keys: list[str], interactions: pl.DataFrame) -> pl.DataFrame:
    """(user_key, tmdb_id, rating, seen, on_watchlist) of members absent from the content model:
    from user_item_interactions when dbt has run since they came, else from their reviews."""
    known = interactions.filter(pl.col("user_key").is_in(user_keys))
    missing = [k for k in user_keys if k not in set(known["user_key"].unique().to_list())]
    frames = [known] + [
        member_observations(con, key).with_columns(pl.lit(key).alias("user_key")).select(known.columns)
        for key in missing
    ]
    return pl.concat(frames, how="vertical_relaxed")


def with_film_columns(recs: pl.DataFrame, films: pl.DataFrame) -> pl.DataFrame:
    parts = pl.col("user_key").str.split_exact(":", 1).struct
    return recs.join(
        films.select("tmdb_id", "title", "year", "release_date", "genres"), on="tmdb_id", how="left"
    ).with_columns(
        parts.field("field_0").alias("source"), parts.field("field_1").alias("username"), pl.col("genres").fill_null([])
    )


NEW_FOR_YOU_COLUMNS = (
    "username",
    "source",
    "user_key",
    "rank",
    "tmdb_id",
    "title",
    "year",
    "release_date",
    "genres",
    "score",
    "reason",
    "model",
    "model_version",
    "generated_at",
)


@dataclass
class NewFilms:
    rows: pl.DataFrame  # NEW_FOR_YOU_COLUMNS, by user_key and rank
    candidates: int  # films released in the window
    released_after: dt.date
    model: TrainedModel


def new_films_for(
    con: duckdb.DuckDBPyConnection,
    models_dir: Path,
    user_keys: list[str],
    policy: ServingPolicy,
    context: ContentContext | None = None,
) -> NewFilms:
    """Each member's top films released in the last ``policy.new_for_you_months`` months of the
    catalogue, by the content model, with reasons (``serving.new_for_you`` rows). Raises
    FileNotFoundError when no content model has been fitted yet."""
    context = context or ContentContext.load(con, models_dir)
    trained, films = context.trained, context.films
    candidates, since = released_within(
        films.filter(known_enough(policy)), policy.new_for_you_months, today=policy.as_of
    )
    recs, _ = content_rows(con, context, candidates, user_keys, policy.watchlist, policy.new_for_you_top_n + 10)
    recs = (  # a film logged under another title is seen too; the 10 spare rows stand in for it
        not_seen_by_title(con, recs, films)
        .filter(pl.int_range(pl.len()).over("user_key") < policy.new_for_you_top_n)
        .with_columns(rank=(pl.int_range(pl.len()).over("user_key") + 1).cast(recs.schema["rank"]))
    )
    generated = now()
    rows = (
        with_film_columns(recs, films)
        .with_columns(
            pl.lit(trained.name).alias("model"),
            pl.lit(trained.version).alias("model_version"),
            pl.lit(generated).alias("generated_at"),
        )
        .select(NEW_FOR_YOU_COLUMNS)
        .sort("user_key", "rank")
    )
    return NewFilms(rows, candidates.height, since, trained)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def not_seen_by_title(con: duckdb.DuckDBPyConnection, recs: pl.DataFrame, films: pl.DataFrame) -> pl.DataFrame:
    """``recs`` (user_key, tmdb_id, rank ...) without the films a member logged under another
    title (core.seen: every name, a dropped subtitle or "or (...)" part, the year within one)."""
    if recs.height == 0 or not table_exists(con, REVIEWS):
        return recs
    keys = read_seen_title_keys(con, recs["user_key"].unique().to_list())
    names = film_title_keys(films.filter(pl.col("tmdb_id").is_in(recs["tmdb_id"].unique().to_list())))
    seen = seen_recommendations(recs, keys, names)
    return recs.join(seen.select("user_key", "tmdb_id"), on=["user_key", "tmdb_id"], how="anti").sort(
        "user_key", "rank"
    )


def known_enough(policy: ServingPolicy) -> pl.Expr:
    """New films worth proposing: with features this thin (a 2023 film offline has genres,
    language and runtime), a film few people have voted on is a guess nobody would trust, and
    one its viewers rated poorly is a pick nobody would thank us for."""
    return (pl.col("vote_count").fill_null(0) >= policy.new_film_min_votes) & (
        pl.col("vote_average").fill_null(0) >= policy.new_film_min_rating
    )
