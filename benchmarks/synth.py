"""Seeded synthetic film communities in the MovieLens format, plus a TMDb-shaped snapshot.

    python benchmarks/synth.py --size 1000 --out benchmarks/work/1000/data [--seed 7]

Hidden tastes drive everything: every film belongs mostly to one of ``TASTES`` latent
clusters and every user likes a few clusters. A user's choice of films mixes a Zipf-like
popularity with that affinity: weighted sampling without replacement (Gumbel top-k; at the
ML-32M sizes, where that needs a key per rater and film, the same weights are sampled by
taste group then film, see ``_GroupSampler``);
ratings add user and film biases and noise, rounded to half stars in 0.5-5. Genres,
directors, cast, keywords and original language follow the film's cluster, so content
features carry real signal. Each user is active in a window of years; their timestamps are
sorted and never before the film's release.

Writes ``ratings.csv``, ``movies.csv``, ``links.csv``, ``tmdb/movies.jsonl.gz`` and
``synth.json`` (the spec and counts).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

TASTES = 12
#: how strongly hidden taste (vs popularity) picks the films a user watches
TASTE_WEIGHT = 20.0
USER_CONCENTRATION = 0.25
TMDB_ID_OFFSET = 100_000
END = dt.datetime(2026, 10, 31, tzinfo=dt.UTC).timestamp()
START = dt.datetime(2005, 1, 1, tzinfo=dt.UTC).timestamp()
DAY = 86_400.0

GENRES = [
    (28, "Action"),
    (12, "Adventure"),
    (16, "Animation"),
    (35, "Comedy"),
    (80, "Crime"),
    (99, "Documentary"),
    (18, "Drama"),
    (10751, "Family"),
    (14, "Fantasy"),
    (36, "History"),
    (27, "Horror"),
    (10402, "Music"),
    (9648, "Mystery"),
    (10749, "Romance"),
    (878, "Science Fiction"),
    (10770, "TV Movie"),
    (53, "Thriller"),
    (10752, "War"),
    (37, "Western"),
]
LANGUAGES = ["en", "fr", "ja", "ko", "es", "de", "it", "hi", "zh", "sv", "da", "pt"]
_SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ren",
    "sa",
    "to",
    "vel",
    "da",
    "ni",
    "or",
    "bri",
    "an",
    "el",
    "mar",
    "is",
    "tov",
    "ge",
    "lu",
    "cha",
    "pe",
    "ro",
    "sil",
    "ven",
    "ta",
    "ber",
    "no",
]
_WORDS = [
    "night",
    "river",
    "glass",
    "summer",
    "ghost",
    "city",
    "winter",
    "iron",
    "silent",
    "red",
    "last",
    "golden",
    "broken",
    "hidden",
    "wild",
    "dark",
    "long",
    "blue",
    "lost",
    "stone",
    "paper",
    "quiet",
    "burning",
    "distant",
    "salt",
    "velvet",
    "northern",
    "empty",
    "second",
    "small",
    "hollow",
    "bright",
    "cold",
    "open",
    "secret",
    "falling",
    "electric",
    "sweet",
]
_NOUNS = [
    "road",
    "house",
    "garden",
    "letter",
    "kingdom",
    "station",
    "island",
    "mirror",
    "harbor",
    "machine",
    "dance",
    "witness",
    "heart",
    "empire",
    "border",
    "signal",
    "orchard",
    "song",
    "frontier",
    "memory",
    "hunter",
    "circus",
    "tide",
    "promise",
    "engine",
    "planet",
    "shadow",
]


@dataclass(frozen=True)
class SizeSpec:
    name: str
    users: int
    films: int
    mean_ratings: float
    sigma: float = 1.0  # log-normal spread of ratings per user: the long tail
    min_ratings: int = 15
    zipf: float = 1.1  # film popularity ~ 1 / rank**zipf
    max_year: int = 2025  # latest release year
    end_year: int = 2026  # ratings run to 31 October of this year

    @property
    def max_ratings(self) -> int:
        return max(self.min_ratings + 1, int(self.films * 0.4))


#: shaped like MovieLens 32M: 200,948 raters (at least 20 ratings each, median ~70, mean ~160),
#: 87,585 films, 32M ratings, release years and ratings up to 2023
ML32M = SizeSpec(
    "ml32m",
    users=200_000,
    films=87_585,
    mean_ratings=160.0,
    sigma=1.15,
    min_ratings=20,
    zipf=1.0,
    max_year=2023,
    end_year=2023,
)

SIZES: dict[str, SizeSpec] = {
    "tiny": SizeSpec("tiny", users=50, films=600, mean_ratings=100.0, sigma=0.7, min_ratings=20),
    "200": SizeSpec("200", users=200, films=10_000, mean_ratings=1_000.0),
    "1000": SizeSpec("1000", users=1_000, films=30_000, mean_ratings=1_000.0),
    "5000": SizeSpec("5000", users=5_000, films=60_000, mean_ratings=1_000.0),
    "ml32m": ML32M,
    # the same films and per-rater shape with a tenth of the raters (3.2M ratings)
    "ml32m-tenth": replace(ML32M, name="ml32m-tenth", users=20_000),
}


def spec_for(size: str) -> SizeSpec:
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose from {', '.join(SIZES)}")
    return SIZES[size]


@dataclass
class Community:
    spec: SizeSpec
    seed: int
    ratings: pl.DataFrame  # userId, movieId, rating, timestamp (sorted by user, time)
    films: pl.DataFrame  # movieId, tmdbId, title, year, release_date, cluster, popularity weight
    film_details: list[dict[str, Any]]  # TMDb movie-details-shaped records


def _names(rng: np.random.Generator, n: int, parts: int) -> list[str]:
    picks = rng.integers(0, len(_SYLLABLES), size=(n, 2, parts))
    return [" ".join("".join(_SYLLABLES[s] for s in word).capitalize() for word in row) for row in picks]


def _films(rng: np.random.Generator, spec: SizeSpec) -> dict[str, np.ndarray]:
    n = spec.films
    ranks = rng.permutation(n) + 1  # popularity rank, independent of id
    weight = 1.0 / ranks.astype(np.float64) ** spec.zipf
    cluster_share = rng.dirichlet(np.full(TASTES, 4.0))
    cluster = rng.choice(TASTES, size=n, p=cluster_share)
    secondary = (cluster + rng.integers(1, TASTES, size=n)) % TASTES
    mix = np.full((n, TASTES), 0.02)
    mix[np.arange(n), cluster] += 0.75
    mix[np.arange(n), secondary] += 0.2
    mix /= mix.sum(axis=1, keepdims=True)
    year = np.clip(np.round(spec.max_year - 1 - rng.gamma(2.0, 9.0, size=n)), 1925, spec.max_year).astype(np.int32)
    day_of_year = rng.integers(1, 365, size=n)
    release = np.array(
        [dt.date(int(y), 1, 1) + dt.timedelta(days=int(d) - 1) for y, d in zip(year, day_of_year, strict=True)]
    )
    return {
        "weight": weight,
        "cluster": cluster,
        "secondary": secondary,
        "mix": mix,
        "year": year,
        "release": release,
        "bias": rng.normal(0.0, 0.45, size=n),
    }


def _user_counts(rng: np.random.Generator, spec: SizeSpec) -> np.ndarray:
    mu = np.log(spec.mean_ratings) - spec.sigma**2 / 2
    counts = np.round(rng.lognormal(mu, spec.sigma, size=spec.users))
    return np.clip(counts, spec.min_ratings, spec.max_ratings).astype(np.int64)


#: above this many user x film keys, films are drawn by taste then popularity (``_sampled_choices``)
#: instead of a Gumbel key for every film (both ML-32M sizes: the full one would need 17.5 billion keys)
GUMBEL_LIMIT = 1_000_000_000


def _gumbel_choices(
    rng: np.random.Generator, tastes: np.ndarray, counts: np.ndarray, films: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Gumbel top-k: each user's ``counts[u]`` films, without replacement, with weights
    popularity x exp(TASTE_WEIGHT x affinity) (exact; one key per user and film)."""
    n_users, n_films = tastes.shape[0], films["mix"].shape[0]
    log_pop = np.log(films["weight"])
    mix = films["mix"].astype(np.float32)
    blocks = []
    chunk = max(1, 4_000_000 // n_films)
    for lo in range(0, n_users, chunk):
        hi = min(n_users, lo + chunk)
        aff = tastes[lo:hi].astype(np.float32) @ mix.T  # in [0, 1]
        keys = log_pop[None, :] + TASTE_WEIGHT * aff + rng.gumbel(size=aff.shape)
        k = counts[lo:hi]
        kmax = int(k.max())
        top = np.argpartition(-keys, kmax - 1, axis=1)[:, :kmax]
        order = np.argsort(-np.take_along_axis(keys, top, axis=1), axis=1)
        top = np.take_along_axis(top, order, axis=1)
        keep = np.arange(kmax)[None, :] < k[:, None]
        blocks.append((np.broadcast_to(np.arange(lo, hi)[:, None], top.shape)[keep], top[keep]))
    return np.concatenate([b[0] for b in blocks]), np.concatenate([b[1] for b in blocks])


#: raters with more films than this get exact Gumbel keys even at the large sizes: drawing and
#: dropping repeats needs too many draws once a rater has taken most of their favourite films
HEAVY_RATER = 1_000


class _GroupSampler:
    """Draws films with weight popularity x exp(TASTE_WEIGHT x affinity), exactly, without a key
    per rater and film. Every film's taste mix is set by its (cluster, secondary) pair, so the
    affinity of a rater and a film depends only on the film's group: a draw picks a group with
    weight exp(TASTE_WEIGHT x affinity) x the group's popularity mass, then a film of the group by
    popularity. Both picks are one ``searchsorted`` in a flat table of cumulative shares offset by
    the row index (rater, or group), so nothing of size draws x groups is built."""

    def __init__(self, tastes: np.ndarray, films: dict[str, np.ndarray]) -> None:
        group = films["cluster"].astype(np.int64) * TASTES + films["secondary"]
        _, self.film_group = np.unique(group, return_inverse=True)
        self.order = np.argsort(self.film_group, kind="stable")  # films grouped
        n_groups = int(self.film_group.max()) + 1
        first = self.order[np.searchsorted(self.film_group[self.order], np.arange(n_groups))]
        group_mix = films["mix"][first]  # (groups, TASTES): the same row for every film of a group
        pop = films["weight"][self.order]
        mass = np.bincount(self.film_group, weights=films["weight"], minlength=n_groups)
        within = np.cumsum(pop) - np.repeat(np.cumsum(mass) - mass, np.bincount(self.film_group))
        self.film_table = self.film_group[self.order] + within / mass[self.film_group[self.order]]
        self.group_table = np.empty(tastes.shape[0] * n_groups)
        self.n_groups = n_groups
        step = 50_000
        for lo in range(0, tastes.shape[0], step):
            logw = TASTE_WEIGHT * (tastes[lo : lo + step] @ group_mix.T) + np.log(mass)[None, :]
            w = np.exp(logw - logw.max(axis=1, keepdims=True))
            share = np.cumsum(w, axis=1) / w.sum(axis=1, keepdims=True)
            rows = np.arange(lo, lo + share.shape[0])[:, None]
            self.group_table[lo * n_groups : lo * n_groups + share.size] = (rows + share).ravel()

    def draw(self, rng: np.random.Generator, owner: np.ndarray) -> np.ndarray:
        """One film per entry of ``owner`` (rater indices)."""
        at = np.searchsorted(self.group_table, owner + rng.uniform(size=owner.size), side="right")
        group = np.minimum(at - owner * self.n_groups, self.n_groups - 1)
        pos = np.searchsorted(self.film_table, group + rng.uniform(size=owner.size), side="right")
        return self.order[np.minimum(pos, self.order.size - 1)]


def _sampled_choices(
    rng: np.random.Generator, tastes: np.ndarray, counts: np.ndarray, films: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """The large-size draw, the same distribution as ``_gumbel_choices``: each rater's films are
    drawn one at a time (``_GroupSampler``) and repeats dropped, which is weighted sampling
    without replacement; each keeps their first ``counts[u]`` distinct films. Heavy raters, and
    any rater still short after the rounds, get exact Gumbel keys instead."""
    n_users, n_films = tastes.shape[0], films["mix"].shape[0]
    sampler = _GroupSampler(tastes, films)
    kept: list[np.ndarray] = []  # keys user * n_films + film
    need = counts.astype(np.int64).copy()
    todo = np.flatnonzero(need <= HEAVY_RATER)
    for extra in (1.6, 3.0, 8.0):
        owner = np.repeat(todo, np.ceil(need[todo] * extra).astype(np.int64) + 8)
        key = owner * n_films + sampler.draw(rng, owner)
        _, first = np.unique(key, return_index=True)
        key = key[np.sort(first)]  # distinct, in the order drawn (grouped by user)
        if kept:
            key = key[~np.isin(key, np.concatenate(kept))]
        owner = key // n_films
        rank = np.arange(key.size) - np.searchsorted(owner, owner)
        key = key[rank < need[owner]]
        kept.append(key)
        need -= np.bincount(key // n_films, minlength=n_users)
        todo = todo[need[todo] > 0]
        if todo.size == 0:
            break
    exact = np.flatnonzero(need > 0)  # heavy raters and the few still short: Gumbel keys
    key = np.sort(np.concatenate(kept))
    key = key[~np.isin(key // n_films, exact)]
    users, items = key // n_films, key % n_films
    if exact.size:
        sub_users, sub_items = _gumbel_choices(rng, tastes[exact], counts[exact], films)
        users = np.concatenate([users, exact[sub_users]])
        items = np.concatenate([items, sub_items])
    return users, items


def _ratings(rng: np.random.Generator, spec: SizeSpec, films: dict[str, np.ndarray]) -> pl.DataFrame:
    n_users, n_films = spec.users, spec.films
    tastes = rng.dirichlet(np.full(TASTES, USER_CONCENTRATION), size=n_users)  # a few liked clusters each
    counts = _user_counts(rng, spec)
    user_bias = rng.normal(0.0, 0.4, size=n_users)
    release_ts = (films["release"].astype("datetime64[s]").astype(np.int64)).astype(np.float64)
    choose = _gumbel_choices if n_users * n_films <= GUMBEL_LIMIT else _sampled_choices
    users, items = choose(rng, tastes, counts, films)
    aff = np.empty(users.size)
    step = 2_000_000  # row slices: tastes[users] for 32M ratings would be 3 GB at once
    for lo in range(0, users.size, step):
        sl = slice(lo, lo + step)
        aff[sl] = np.einsum("ij,ij->i", tastes[users[sl]], films["mix"][items[sl]])
    centred = aff - (tastes @ films["mix"].mean(axis=0))[users]
    raw = 3.3 + user_bias[users] + films["bias"][items] + 3.0 * centred + rng.normal(0.0, 0.55, size=users.size)
    rating = np.clip(np.round(raw * 2) / 2, 0.5, 5.0)
    end = min(END, dt.datetime(spec.end_year, 10, 31, tzinfo=dt.UTC).timestamp())
    start = rng.uniform(START, end - 200 * DAY, size=n_users)
    span = np.minimum(rng.lognormal(np.log(4 * 365 * DAY), 0.6, size=n_users), end - start)
    ts = start[users] + rng.uniform(0, 1, size=users.size) * span[users]
    ts = np.maximum(ts, release_ts[items] + 30 * DAY)
    ts = np.minimum(ts, end).astype(np.int64)
    ts = ts + rng.integers(0, 3_600, size=users.size)  # same-day films get distinct times
    return pl.DataFrame(
        {
            "userId": (users + 1).astype(np.int64),
            "movieId": (items + 1).astype(np.int64),
            "rating": rating.astype(np.float64),
            "timestamp": ts,
        }
    ).sort("userId", "timestamp", "movieId")


def _pool(rng: np.random.Generator, size: int, clusters: int) -> tuple[list[str], np.ndarray]:
    names = _names(rng, size, 2)
    return names, rng.integers(0, clusters, size=size)


def _details(
    rng: np.random.Generator, spec: SizeSpec, films: dict[str, np.ndarray], titles: list[str], counts: np.ndarray
) -> list[dict[str, Any]]:
    n = spec.films
    genre_of = rng.permutation(len(GENRES))  # cluster k -> GENRES[genre_of[k % 19]] (+ a second)
    second_of = rng.permutation(len(GENRES))
    lang_of = np.where(rng.uniform(size=TASTES) < 0.7, 0, rng.integers(1, len(LANGUAGES), size=TASTES))
    directors, director_cluster = _pool(rng, max(20, n // 6), TASTES)
    actors, actor_cluster = _pool(rng, max(60, n // 2), TASTES)
    by_cluster_d = [np.flatnonzero(director_cluster == k) for k in range(TASTES)]
    by_cluster_a = [np.flatnonzero(actor_cluster == k) for k in range(TASTES)]
    vocab = [f"{w} {m}" for w in _WORDS for m in _NOUNS]
    signature = [rng.choice(len(vocab), size=40, replace=False) for _ in range(TASTES)]
    popularity = films["weight"] / films["weight"].max() * 250.0 + rng.exponential(1.0, size=n)
    vote_count = np.round((counts + 1) * rng.lognormal(3.0, 0.5, size=n)).astype(np.int64)
    vote_average = np.clip(6.3 + 1.6 * films["bias"] + rng.normal(0, 0.4, size=n), 1.0, 9.5)
    runtime = np.clip(np.round(rng.normal(104, 18, size=n)), 62, 240).astype(np.int64)
    budget = np.where(
        rng.uniform(size=n) < 0.6, np.round(rng.lognormal(16.0, 1.2, size=n) * (1 + 30 * films["weight"]), -3), 0
    )
    revenue = np.where(budget > 0, np.round(budget * rng.lognormal(0.6, 0.8, size=n), -3), 0)
    records = []
    for i in range(n):
        c, s = int(films["cluster"][i]), int(films["secondary"][i])
        genre_idx = [genre_of[c % len(GENRES)]]
        if rng.uniform() < 0.6:
            genre_idx.append(second_of[c % len(GENRES)])
        if rng.uniform() < 0.35:
            genre_idx.append(genre_of[s % len(GENRES)])
        genre_ids = list(dict.fromkeys(int(g) for g in genre_idx))
        pool_d = by_cluster_d[c] if by_cluster_d[c].size else np.arange(len(directors))
        pool_a = by_cluster_a[c] if by_cluster_a[c].size else np.arange(len(actors))
        director = directors[int(pool_d[int(rng.zipf(1.6)) % pool_d.size])]
        n_cast = int(rng.integers(5, 11))
        own = rng.choice(pool_a, size=min(pool_a.size, n_cast - n_cast // 3), replace=False)
        other = rng.choice(len(actors), size=n_cast // 3, replace=False)
        cast = list(dict.fromkeys(int(a) for a in np.concatenate([own, other])))
        n_kw = int(rng.integers(3, 11))
        kws = [int(signature[c][j]) for j in rng.choice(40, size=n_kw - n_kw // 3, replace=False)]
        kws += [int(k) for k in rng.choice(len(vocab), size=n_kw // 3, replace=False)]
        kws = list(dict.fromkeys(kws))
        language = LANGUAGES[int(lang_of[c])] if rng.uniform() < 0.85 else "en"
        records.append(
            {
                "id": TMDB_ID_OFFSET + i + 1,
                "imdb_id": f"tt{9_000_000 + i + 1:07d}",
                "title": titles[i],
                "original_title": titles[i],
                "release_date": films["release"][i].isoformat(),
                "genres": [{"id": GENRES[g][0], "name": GENRES[g][1]} for g in genre_ids],
                "runtime": int(runtime[i]),
                "budget": int(budget[i]),
                "revenue": int(revenue[i]),
                "popularity": round(float(popularity[i]), 3),
                "vote_average": round(float(vote_average[i]), 1),
                "vote_count": int(vote_count[i]),
                "original_language": language,
                "overview": "A synthetic film.",
                "credits": {
                    "cast": [{"name": actors[a], "order": o} for o, a in enumerate(cast)],
                    "crew": [{"name": director, "job": "Director", "department": "Directing"}],
                },
                "keywords": {"keywords": [{"id": 50_000 + k, "name": vocab[k]} for k in kws]},
            }
        )
    return records


def _titles(rng: np.random.Generator, n: int) -> list[str]:
    w = rng.integers(0, len(_WORDS), size=n)
    m = rng.integers(0, len(_NOUNS), size=n)
    # the id keeps titles unique: title search stays unambiguous
    return [
        f"{_WORDS[a].capitalize()} {_NOUNS[b].capitalize()} {i + 1}" for i, (a, b) in enumerate(zip(w, m, strict=True))
    ]


def generate(size: str | SizeSpec, seed: int = 7) -> Community:
    """The community of ``size`` for ``seed``: the same arguments always give the same data."""
    spec = size if isinstance(size, SizeSpec) else spec_for(size)
    root = np.random.SeedSequence(seed)
    film_rng, rating_rng, meta_rng, title_rng = (np.random.default_rng(s) for s in root.spawn(4))
    films = _films(film_rng, spec)
    ratings = _ratings(rating_rng, spec, films)
    counts = np.bincount(ratings["movieId"].to_numpy() - 1, minlength=spec.films)
    titles = _titles(title_rng, spec.films)
    details = _details(meta_rng, spec, films, titles, counts)
    table = pl.DataFrame(
        {
            "movieId": np.arange(1, spec.films + 1, dtype=np.int64),
            "tmdbId": np.arange(1, spec.films + 1, dtype=np.int64) + TMDB_ID_OFFSET,
            "title": titles,
            "year": films["year"],
            "release_date": [r.isoformat() for r in films["release"]],
            "cluster": films["cluster"].astype(np.int32),
            "weight": films["weight"],
            "genres": ["|".join(g["name"] for g in d["genres"]) for d in details],
        }
    )
    return Community(spec=spec, seed=seed, ratings=ratings, films=table, film_details=details)


def write(community: Community, out: Path) -> dict[str, Any]:
    """Write the MovieLens folder and the snapshot; a half-written folder is never left behind
    under ``out`` (files are written beside it and moved in)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "tmdb").mkdir(exist_ok=True)
    films = community.films
    movies = films.select("movieId", pl.format("{} ({})", "title", "year").alias("title"), "genres")
    links = films.select(
        "movieId", pl.format("{}", pl.col("movieId") + 9_000_000).str.zfill(7).alias("imdbId"), "tmdbId"
    )
    staged = {
        out / "ratings.csv": lambda p: community.ratings.write_csv(p),
        out / "movies.csv": lambda p: movies.write_csv(p),
        out / "links.csv": lambda p: links.write_csv(p),
    }
    for path, writer in staged.items():
        tmp = path.with_suffix(".tmp")
        writer(tmp)
        tmp.replace(path)
    snap = out / "tmdb" / "movies.jsonl.gz"
    tmp = snap.with_suffix(".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=3) as fh:
        for rec in community.film_details:
            fh.write(json.dumps(rec, separators=(",", ":")))
            fh.write("\n")
    tmp.replace(snap)
    summary = summarize(community)
    (out / "synth.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def summarize(community: Community) -> dict[str, Any]:
    r = community.ratings
    per_film = r.group_by("movieId").len()["len"].to_numpy()
    counts = np.zeros(community.spec.films, dtype=np.int64)
    counts[: per_film.size] = np.sort(per_film)[::-1]
    top = max(1, community.spec.films // 100)
    per_user = r.group_by("userId").len()["len"]
    return {
        "spec": asdict(community.spec),
        "seed": community.seed,
        "ratings": r.height,
        "users": r["userId"].n_unique(),
        "films": community.spec.films,
        "films_rated": int(per_film.size),
        "ratings_per_user": {
            "mean": round(float(per_user.mean()), 1),
            "median": float(per_user.median()),
            "max": int(per_user.max()),
            "min": int(per_user.min()),
        },
        "top1pct_films_mean_ratings": round(float(counts[:top].mean()), 2),
        "median_film_ratings": float(np.median(counts)),
        "top1pct_share": round(float(counts[:top].sum() / max(1, counts.sum())), 4),
        "rating_values": sorted(float(v) for v in r["rating"].unique()),
    }


def daily_export_entries(
    community: Community, day: dt.date, users: int, per_user: float = 1.0, seed: int = 11
) -> pl.DataFrame:
    """One day of new Letterboxd activity (diary entries with ratings) for ``users`` synthetic
    Letterboxd members, shaped like ``raw.letterboxd_export_entries`` rows of scrape date ``day``:
    about what a nightly RSS read brings in."""
    rng = np.random.default_rng([seed, day.toordinal()])
    counts = rng.poisson(per_user, size=users)
    owner = np.repeat(np.arange(users), counts)
    weights = community.films["weight"].to_numpy()
    films = rng.choice(weights.size, size=owner.size, p=weights / weights.sum())
    info = community.films[films]
    n = owner.size
    return pl.DataFrame(
        {
            "username": [f"synth{u:05d}" for u in owner],
            "kind": ["diary"] * n,
            "film_name": info["title"],
            "film_year": info["year"].cast(pl.Int32),
            "letterboxd_uri": [f"https://boxd.it/s{day:%Y%m%d}{i:06d}" for i in range(n)],
            "film_key": [None] * n,
            "entry_key": [f"s{day:%Y%m%d}{i:06d}" for i in range(n)],
            "rating": np.clip(np.round(rng.normal(3.5, 0.9, size=n) * 2) / 2, 0.5, 5.0),
            "rewatch": rng.uniform(size=n) < 0.08,
            "liked": rng.uniform(size=n) < 0.3,
            "tags": [None] * n,
            "logged_date": [day] * n,
            "watched_date": [day - dt.timedelta(days=1)] * n,
            "source_file": ["rss"] * n,
            "source_line": np.arange(1, n + 1, dtype=np.int32),
            "scrape_date": [day] * n,
        },
        schema_overrides={
            "film_key": pl.Utf8,
            "tags": pl.Utf8,
            "watched_date": pl.Date,
            "logged_date": pl.Date,
            "scrape_date": pl.Date,
        },
    )


def member_exports(
    community: Community,
    out: Path,
    members: int = 20,
    films_each: int = 120,
    seed: int = 13,
    prefix: str = "synthmember",
) -> list[Path]:
    """Letterboxd data exports (folders: profile, ratings, watched) for ``members`` synthetic
    Letterboxd members, with films drawn by popularity: the people lbx writes lists for."""
    rng = np.random.default_rng(seed)
    weights = community.films["weight"].to_numpy()
    films = community.films
    paths = []
    for m in range(members):
        username = f"{prefix}{m:03d}"
        picks = rng.choice(weights.size, size=min(films_each, weights.size), replace=False, p=weights / weights.sum())
        info = films[np.sort(picks)]
        stars = np.clip(np.round(rng.normal(3.5, 0.9, size=info.height) * 2) / 2, 0.5, 5.0)
        day = dt.date(2026, 10, 1)
        rows = pl.DataFrame(
            {
                "Date": [day.isoformat()] * info.height,
                "Name": info["title"],
                "Year": info["year"],
                "Letterboxd URI": [f"https://boxd.it/sy{i}" for i in info["movieId"].to_list()],
            }
        )
        root = out / f"{username}_2026-10"
        root.mkdir(parents=True, exist_ok=True)
        (root / "profile.csv").write_text(
            "Date Joined,Username,Given Name,Family Name,Email Address,Location,Website,Bio,Pronoun,"
            f"Favorite Films\n2020-01-01,{username},Synth,,,,,,,\n",
            encoding="utf-8",
        )
        rows.write_csv(root / "watched.csv")
        rows.with_columns(pl.Series("Rating", stars)).write_csv(root / "ratings.csv")
        paths.append(root)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="tiny", choices=list(SIZES))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    summary = write(generate(args.size, args.seed), args.out)
    print(json.dumps({**summary, "seconds": round(time.perf_counter() - started, 2)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
