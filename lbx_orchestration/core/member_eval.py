"""The member protocol: would lbx have shown each Letterboxd member the films they went on to rate?

For every member with an imported export: their rated films are ordered by the day they logged
them (the diary's watched date where there is one), the latest ``hide`` share is hidden, and
the rest of the export (every file, the hidden films taken out of all of them) is imported
under a new name into a copy of the warehouse, exactly as `lbx import` would: folded into the
served model, blended with the content model, "New for you" written. The lists are then scored
against the hidden films: hits@20 and hits@50, recall@50, the share of recent releases in each
list beside the member's own (their latest 100 logged films, hidden ones excluded), for the
main list, for "New for you", for both together, and for two baselines on the same films
(the community's most-logged films, and TMDb's most-voted recent releases). The main list is
built twice: with the share of recent films following the member, and with the fixed-weight
fusion it had before.

Nothing hidden is learnt: in the copy the hidden films are taken out of the members'
interactions, and the served collaborative model (its card's hyperparameters) and the content
model are refitted on what is left before anyone is imported. A model that had seen a member's
latest films would find them again (on the bundled data that lifts recall@50 from a few per
cent to 74%).

Each member is served as on the day they logged their first hidden film (``ServingPolicy.as_of``):
films released after it are not proposed, and "New for you" covers the 24 months of releases
before it, as it would have then. A film released later cannot be found, so it counts as a miss.
TMDb's vote counts are today's, not that day's: they carry some of what happened since into the
quality floor and the votes prior.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb
import polars as pl

from lbx_orchestration.core import lake
from lbx_orchestration.core.members import onboard
from lbx_orchestration.core.observations import title_film_key
from lbx_orchestration.core.recsys.data.content_features import DEFAULT_OVERVIEW
from lbx_orchestration.core.recsys.data.data import build_interactions
from lbx_orchestration.core.recsys.data.training_data import (
    CONTENT_MOVIES_SQL,
    item_features,
    training_observations,
)
from lbx_orchestration.core.recsys.models.content_training import refit_content_model
from lbx_orchestration.core.recsys.models.pipeline import (
    CARD_FILE,
    latest_path,
    load_trained,
    save_trained,
    train_for_serving,
)
from lbx_orchestration.core.recsys.serving.content_serving import (
    CONTENT_ALIAS,
    FEATURE_SPACE_FILE,
    known_films,
    released_by,
)
from lbx_orchestration.core.recsys.serving.present import LATEST, member_shares, recent_cutoff
from lbx_orchestration.core.recsys.serving.serve import ServingPolicy
from lbx_orchestration.core.settings import RELEVANCE, SEED
from lbx_orchestration.core.tables import (
    EXPORT_ENTRIES,
    EXPORT_IMPORTS,
    INTERACTIONS,
    MODEL_METRICS,
    RESOLUTION,
    accepted_model,
)
from lbx_orchestration.core.tmdb.base import TmdbSource
from lbx_orchestration.core.warehouse import connect, read_frame

HIDE = 0.2
LISTS = ("main", "main_fixed_blend", "new_for_you", "main+new", "popularity", "recent_popularity")
_FILES = {
    "rating": ("ratings.csv", ("Date", "Name", "Year", "Letterboxd URI", "Rating")),
    "watched": ("watched.csv", ("Date", "Name", "Year", "Letterboxd URI")),
    "watchlist": ("watchlist.csv", ("Date", "Name", "Year", "Letterboxd URI")),
    "like": ("likes/films.csv", ("Date", "Name", "Year", "Letterboxd URI")),
    "diary": ("diary.csv", ("Date", "Name", "Year", "Letterboxd URI", "Rating", "Rewatch", "Tags", "Watched Date")),
    "review": (
        "reviews.csv",
        ("Date", "Name", "Year", "Letterboxd URI", "Rating", "Rewatch", "Review", "Tags", "Watched Date"),
    ),
}


@dataclass
class MemberResult:
    member: str
    rated: int
    hidden: list[int]
    own_recent_share: float | None
    lists: dict[str, list[int]] = field(default_factory=dict)
    split: dt.date | None = None

    def hits(self, name: str, k: int) -> int:
        return len(set(self.lists.get(name, [])[:k]) & set(self.hidden))

    def recall(self, name: str, k: int) -> float:
        return self.hits(name, k) / len(self.hidden) if self.hidden else 0.0


@dataclass
class MemberReport:
    results: list[MemberResult]
    recent: set[int]
    cutoff: int
    notes: list[str] = field(default_factory=list)

    def recent_share(self, result: MemberResult, name: str) -> float | None:
        films = result.lists.get(name, [])
        return sum(f in self.recent for f in films) / len(films) if films else None

    def rows(self) -> list[dict]:
        out = []
        for r in self.results:
            for name in LISTS:
                if name not in r.lists:
                    continue
                out.append(
                    {
                        "member": r.member,
                        "list": name,
                        "films": len(r.lists[name]),
                        "hidden": len(r.hidden),
                        "hits@20": r.hits(name, 20),
                        "hits@50": r.hits(name, 50 if name != "main+new" else 70),
                        "recall@50": round(r.recall(name, 50 if name != "main+new" else 70), 4),
                        "recent_share": _round(self.recent_share(r, name)),
                        "member_recent_share": _round(r.own_recent_share),
                    }
                )
        return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _members(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(f"select distinct lower(username) from {EXPORT_IMPORTS} order by 1").fetchall()
    return [r[0] for r in rows]


@dataclass(frozen=True)
class Plan:
    entries: pl.DataFrame  # the member's export entries with their TMDb ids
    hidden: list[int]  # their latest ``hide`` share of rated films
    split: dt.date | None  # the day the first hidden film was logged: the protocol serves as on it


def hidden_films(con: duckdb.DuckDBPyConnection, member: str, hide: float = HIDE) -> Plan:
    """The member's export entries with their TMDb ids, and the ids of their latest ``hide`` share
    of rated films (by the day logged: the diary's watched date where there is one)."""
    raw = read_frame(con, f"select * from {EXPORT_ENTRIES} where lower(username) = ?", [member])
    keys = [title_film_key(t, y) for t, y in zip(raw["film_name"].to_list(), raw["film_year"].to_list(), strict=True)]
    resolved = read_frame(con, f"select film_key as _key, tmdb_id from {RESOLUTION} where tmdb_id is not null")
    entries = (  # the key each entry's observation has (core.observations.export_observations)
        raw.with_columns(pl.Series("_title_key", keys, dtype=pl.Utf8))
        .with_columns(
            _key=pl.when(pl.col("film_key").is_not_null())
            .then(pl.format("lb:{}", pl.col("film_key")))
            .otherwise(pl.col("_title_key"))
        )
        .join(resolved.unique("_key"), on="_key", how="left")
        .drop("_title_key", "_key")
    )
    rated = entries.filter((pl.col("kind") == "rating") & pl.col("tmdb_id").is_not_null()).select("tmdb_id").unique()
    dates = (
        entries.filter(pl.col("tmdb_id").is_not_null())
        .group_by("tmdb_id")
        .agg(pl.max_horizontal(pl.col("watched_date").max(), pl.col("logged_date").max()).alias("day"))
    )
    ordered = rated.join(dates, on="tmdb_id", how="left").sort(["day", "tmdb_id"], descending=True, nulls_last=True)
    count = math.ceil(hide * ordered.height)
    chosen = ordered.head(count)
    split = chosen["day"].drop_nulls().min() if count else None
    return Plan(entries, [int(t) for t in chosen["tmdb_id"].to_list()], split if isinstance(split, dt.date) else None)


def write_export(entries: pl.DataFrame, username: str, folder: Path) -> Path:
    """A Letterboxd export folder holding ``entries`` (raw.letterboxd_export_entries rows)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "profile.csv").write_text(f"Date Joined,Username\n2020-01-01,{username}\n", encoding="utf-8")
    for kind, (name, header) in _FILES.items():
        rows = entries.filter(pl.col("kind") == kind)
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            for r in rows.iter_rows(named=True):
                values = {
                    "Date": r["logged_date"] or "",
                    "Name": r["film_name"] or "",
                    "Year": r["film_year"] or "",
                    "Letterboxd URI": r["letterboxd_uri"] or "",
                    "Rating": f"{r['rating']:g}" if r["rating"] is not None else "",
                    "Rewatch": "Yes" if r["rewatch"] else "",
                    "Review": "",
                    "Tags": r["tags"] or "",
                    "Watched Date": r["watched_date"] or "",
                }
                writer.writerow([values[h] for h in header])
    return folder


def _baselines(
    con: duckdb.DuckDBPyConnection, films: pl.DataFrame, seen: set[int], recent: set[int], policy: ServingPolicy
) -> dict[str, list[int]]:
    logged = read_frame(
        con,
        f"select tmdb_id, count(*) as n from {INTERACTIONS} where seen group by 1 order by n desc, tmdb_id limit 2000",
    )
    out = set(films.filter(~released_by(policy.as_of).fill_null(True))["tmdb_id"].to_list())  # released later
    popular = [int(t) for t in logged["tmdb_id"].to_list() if int(t) not in seen and int(t) not in out][:50]
    fresh = (
        films.filter(
            pl.col("tmdb_id").is_in(list(recent)),
            pl.col("vote_count").fill_null(0) >= policy.new_film_min_votes,
            released_by(policy.as_of),
        )
        .sort(["vote_count", "tmdb_id"], descending=True, nulls_last=True)["tmdb_id"]
        .to_list()
    )
    return {"popularity": popular, "recent_popularity": [int(t) for t in fresh if int(t) not in seen][:50]}


def refit_without(
    db: Path, hidden: dict[str, list[int]], models_dir: Path, seed: int = SEED, overview: str = DEFAULT_OVERVIEW
) -> None:
    """Take the members' hidden films out of ``db``'s interactions, refit the served model (its
    card's hyperparameters, no search) and the content model on the rest into ``models_dir``,
    and point ``db``'s served model at the refit."""
    with connect(db) as con:
        for member, films in hidden.items():
            if films:
                con.execute(
                    f"delete from {INTERACTIONS} where lower(user_key) = ? and list_contains(?::bigint[], tmdb_id)",
                    [f"letterboxd:{member}", films],
                )
        served = accepted_model(con)
        if served is None:
            raise RuntimeError("no accepted model in the warehouse: run `make demo` first")
        card = load_trained(served.path)
        observations = training_observations(con)
        features = item_features(con)
        movies = read_frame(con, f"select * from {CONTENT_MOVIES_SQL}")
        content_card = json.loads((latest_path(served.path.parents[1], CONTENT_ALIAS) / CARD_FILE).read_text())
        params = {k: v for k, v in card.params.items() if k not in ("seed", "num_threads")}
        trained = train_for_serving(
            card.name, observations, features, params_override=params, tune=False, seed=seed, relevance=RELEVANCE
        )
        path = save_trained(trained, models_dir)
        content, space = refit_content_model(build_interactions(observations), movies, content_card, seed, overview)
        space.save(save_trained(content, models_dir, alias=CONTENT_ALIAS) / FEATURE_SPACE_FILE)
        con.execute(f"update {MODEL_METRICS} set path = ? where path = ?", [str(path), str(served.path)])


def run_member_protocol(
    db: Path,
    workdir: Path,
    tmdb_source: TmdbSource | None = None,
    hide: float = HIDE,
    overview: str = DEFAULT_OVERVIEW,
) -> MemberReport:
    """Run the protocol on a copy of ``db`` in ``workdir`` (the original is only read);
    ``overview`` chooses how the refitted content model reads films' overviews."""
    if lake.is_lake(db):
        raise ValueError(
            "the member protocol works on a copy of a DuckDB file; a DuckLake warehouse cannot be copied "
            "as one file: run it on the embedded profile's warehouse"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    copy = workdir / "members-eval.duckdb"
    shutil.copyfile(db, copy)
    policy = ServingPolicy()
    with connect(copy, read_only=True) as con:
        members = _members(con)
        films = known_films(con)
        cutoff = recent_cutoff(films["year"].max())
        recent = set(films.filter(pl.col("year") >= cutoff)["tmdb_id"].to_list())
        plans = {m: hidden_films(con, m, hide) for m in members}
    refit_without(copy, {m: plan.hidden for m, plan in plans.items()}, workdir / "models", overview=overview)
    results, notes = [], []
    for member, plan in plans.items():
        entries, hidden = plan.entries, plan.hidden
        kept = entries.filter(~pl.col("tmdb_id").is_in(hidden) | pl.col("tmdb_id").is_null())
        lists: dict[str, list[int]] = {}
        as_of = replace(policy, as_of=plan.split)  # nothing released after the split is known
        for suffix, variant in (("_ho", as_of), ("_hf", replace(as_of, blend_by_member_share=False))):
            name = f"{member[:60]}{suffix}"
            folder = write_export(kept, name, workdir / name)
            done = onboard(folder, db=copy, tmdb_source=tmdb_source, policy=variant, wait_seconds=120)
            if done.recommendations.height == 0:
                notes.append(f"{member}: no list ({done.note})")
                break
            main = [int(t) for t in done.recommendations.sort("rank")["tmdb_id"].to_list()]
            if suffix == "_ho":
                lists["main"] = main
                new = [] if done.new_films is None else [int(t) for t in done.new_films.sort("rank")["tmdb_id"]]
                lists["new_for_you"] = new
                lists["main+new"] = main + [t for t in new if t not in main]
            else:
                lists["main_fixed_blend"] = main
        if not lists:
            continue
        with connect(copy, read_only=True) as con:
            key = f"letterboxd:{member[:60]}_ho"
            seen = {
                int(t)
                for (t,) in con.execute(
                    "select distinct tmdb_id from staging.stg_reviews where user_key = ? and tmdb_id is not null",
                    [key],
                ).fetchall()
            }
            own = member_shares(con, [key], films.select("tmdb_id", "year"), cutoff, LATEST).get(key)
            lists.update(_baselines(con, films, seen, recent, as_of))
        rated = entries.filter((pl.col("kind") == "rating") & pl.col("tmdb_id").is_not_null())["tmdb_id"].n_unique()
        results.append(MemberResult(member, int(rated), hidden, own, lists, plan.split))
    return MemberReport(results, recent, cutoff, notes)


def totals(report: MemberReport) -> list[dict]:
    """Per list, over every member: hits, hidden films, recall, and the mean gap between the list's
    recent share and the member's own."""
    out = []
    for name in LISTS:
        rows = [r for r in report.rows() if r["list"] == name]
        if not rows:
            continue
        hidden = sum(r["hidden"] for r in rows)
        gaps = [
            abs(r["recent_share"] - r["member_recent_share"])
            for r in rows
            if r["recent_share"] is not None and r["member_recent_share"] is not None
        ]
        out.append(
            {
                "list": name,
                "members": len(rows),
                "hidden": hidden,
                "hits@20": sum(r["hits@20"] for r in rows),
                "hits@50": sum(r["hits@50"] for r in rows),
                "recall@50": round(sum(r["hits@50"] for r in rows) / hidden, 4) if hidden else 0.0,
                "largest_share_gap": round(max(gaps), 3) if gaps else None,
            }
        )
    return out


def summary_markdown(report: MemberReport) -> str:
    lines = [
        "| list | members | hidden | hits@20 | hits@50 | recall@50 | largest gap to the member's recent share |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in totals(report):
        gap = "–" if t["largest_share_gap"] is None else f"{t['largest_share_gap']:.0%}"
        lines.append(
            f"| {t['list']} | {t['members']} | {t['hidden']} | {t['hits@20']} | {t['hits@50']} | "
            f"{t['recall@50']:.3f} | {gap} |"
        )
    return "\n".join(lines) + "\n\nPer member:\n\n" + report_markdown(report)


def report_markdown(report: MemberReport) -> str:
    lines = [
        f"Recent = released {report.cutoff} or later (the catalogue's last 7 years). Hidden: each member's "
        f"latest {HIDE:.0%} of rated films. `main+new` counts hits in the 50 + 20 films together.",
        "",
        "| member | list | hidden | hits@20 | hits@50 | recall@50 | recent share | member's recent share |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report.rows():
        lines.append(
            f"| {row['member']} | {row['list']} | {row['hidden']} | {row['hits@20']} | {row['hits@50']} | "
            f"{row['recall@50']:.3f} | {_pct(row['recent_share'])} | {_pct(row['member_recent_share'])} |"
        )
    lines += [f"- {n}" for n in report.notes]
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"
