"""Titles, observations, film resolution, TMDb flattening, TF-IDF, the gate and the warehouse helpers."""

import datetime as dt
import json
from pathlib import Path

import duckdb
import polars as pl
import pytest

from lbx_orchestration.core.catalog import resolve_films, resolved_share
from lbx_orchestration.core.letterboxd.export import read_export
from lbx_orchestration.core.observations import REVIEW_SCHEMA, export_observations, movielens_observations
from lbx_orchestration.core.recsys.evaluation.gate import decide
from lbx_orchestration.core.tfidf import keyword_tfidf
from lbx_orchestration.core.tmdb.flatten import flatten_details
from lbx_orchestration.core.tmdb.normalize import fix_mojibake, normalize_title, split_movielens_title
from lbx_orchestration.core.tmdb.snapshot import TmdbSnapshot
from lbx_orchestration.core.warehouse import markdown_preview, read_frame, replace_rows, scalar

EXPORTS = Path(__file__).resolve().parents[2] / "lbx_orchestration" / "sample_data" / "letterboxd_exports"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Shining, The (1980)", ("The Shining", None, 1980)),
        (
            "City of Lost Children, The (Cité des enfants perdus, La) (1995)",
            ("The City of Lost Children", "La Cité des enfants perdus", 1995),
        ),
        ("Léon: The Professional (a.k.a. The Professional) (Léon) (1994)", ("Léon: The Professional", "Léon", 1994)),
        ("Babylon 5", ("Babylon 5", None, None)),
    ],
)
def test_movielens_titles(raw: str, expected: tuple) -> None:
    assert split_movielens_title(raw) == expected


def test_normalize_title_folds_case_accents_articles_and_punctuation() -> None:
    assert normalize_title("Amélie") == normalize_title("AMELIE") == "amelie"
    assert normalize_title("Matrix, The") == normalize_title("The Matrix!") == "the matrix"
    assert normalize_title("Fast & Furious") == "fast and furious"
    assert fix_mojibake("Melvilleâ€™s") == "Melville’s"


def test_movielens_observations_keep_every_rating() -> None:
    ratings = pl.DataFrame(
        {"userId": [1, 1, 2], "movieId": [10, 20, 10], "rating": [4.0, 2.5, 5.0], "timestamp": [0, 86_400, 172_800]}
    )
    movies = pl.DataFrame(
        {"movieId": [10, 20], "film_title": ["A", "B"], "film_year": [2000, 2001], "tmdbId": [100, None]},
        schema_overrides={"tmdbId": pl.Int64, "film_year": pl.Int32},
    )
    obs = movielens_observations(ratings, movies, dt.date(2026, 11, 1))
    assert obs.schema == pl.Schema(REVIEW_SCHEMA)
    assert obs["observation_id"].to_list() == ["ml:1:10", "ml:1:20", "ml:2:10"]
    assert obs["tmdb_id"].to_list() == [100, None, 100]
    assert obs["event_date"].to_list() == [dt.date(1970, 1, 1), dt.date(1970, 1, 2), dt.date(1970, 1, 3)]
    assert obs["user_key"].unique().sort().to_list() == ["movielens:1", "movielens:2"]


def test_export_observations_key_films_by_code_or_title() -> None:
    export = read_export(EXPORTS / "melvincarvalho_2021-11")
    obs = export_observations(export.entries, dt.date(2026, 11, 1))
    assert obs["observation_id"].n_unique() == obs.height
    assert set(obs["kind"].unique()) <= {"rating", "watched", "diary", "watchlist", "like", "review"}
    rating_rows = obs.filter(pl.col("kind") == "rating")
    assert rating_rows.height == export.summary()["rated"]
    assert rating_rows["film_key"].str.starts_with("lb:").all()
    assert obs.filter(pl.col("kind") == "diary")["film_key"].str.starts_with("title:").all()
    hulk = rating_rows.filter(pl.col("film_title") == "The Incredible Hulk").row(0, named=True)
    assert hulk["rating"] == 4.0 and hulk["film_year"] == 2008


def test_resolution_uses_source_ids_then_the_snapshot() -> None:
    films = pl.DataFrame(
        {
            "film_key": ["ml:1", "lb:a5fa", "lb:zzzz", "title:x|"],
            "film_title": ["Toy Story", "La La Land", "No Such Film At All 1234", None],
            "film_year": [1995, 2016, 2001, None],
            "tmdb_id": [862, None, None, None],
        },
        schema_overrides={"film_year": pl.Int32, "tmdb_id": pl.Int64},
    )
    res = resolve_films(films, TmdbSnapshot())
    by_key = {r["film_key"]: r for r in res.iter_rows(named=True)}
    assert by_key["ml:1"]["method"] == "source" and by_key["ml:1"]["tmdb_id"] == 862
    assert by_key["lb:a5fa"]["tmdb_id"] == 313369 and by_key["lb:a5fa"]["method"].startswith("search_exact")
    assert by_key["lb:zzzz"]["tmdb_id"] is None
    assert by_key["title:x|"]["method"] == "no_title"
    assert resolved_share(res) == 0.5
    assert resolved_share(res, ["ml:1", "lb:a5fa"]) == 1.0


def test_flatten_details_reads_tmdbs_shape_and_tolerates_gaps() -> None:
    row = flatten_details(
        {
            "id": 7,
            "title": "T",
            "release_date": "1999-03-31",
            "runtime": 0,
            "genres": [{"id": 1, "name": "Drama"}],
            "credits": {
                "cast": [{"name": "B", "order": 1}, {"name": "A", "order": 0}],
                "crew": [{"name": "D", "job": "Director"}, {"name": "W", "job": "Writer"}],
            },
            "keywords": {"keywords": [{"id": 3, "name": "heist"}]},
        }
    )
    assert row["year"] == 1999 and row["runtime"] is None
    assert row["cast_top"] == ["A", "B"] and row["directors"] == ["D"] and row["keywords"] == ["heist"]
    bare = flatten_details({"id": 8})
    assert bare["title"] is None and bare["genres"] is None and bare["year"] is None
    assert bare["collection"] is None and bare["companies"] is None


def test_flatten_details_keeps_collection_companies_and_overview_of_a_real_response() -> None:
    path = Path(__file__).resolve().parents[1] / "fixtures/tmdb/c-eg-themoviedbapi"
    details = json.loads((path / "movies__details_with_append_to_response.json").read_text())
    row = flatten_details(details)
    assert row["collection"] == details["belongs_to_collection"]["name"]
    assert row["companies"] == [c["name"] for c in details["production_companies"]]
    assert row["overview"].startswith("The towns of Gschaid and Millsdorf")


def test_keyword_tfidf_weights_rare_keywords_higher() -> None:
    keywords = [["heist", "paris"], ["heist", "rome"], ["heist", "paris"]]
    movies = pl.DataFrame({"tmdb_id": [1, 2, 3], "keywords": keywords})
    weights = keyword_tfidf(movies, min_df=1)
    film2 = dict(weights.filter(pl.col("tmdb_id") == 2).select("keyword", "weight").iter_rows())
    assert film2["rome"] > film2["heist"]
    norms = weights.group_by("tmdb_id").agg((pl.col("weight") ** 2).sum()).get_column("weight")
    assert all(abs(n - 1.0) < 1e-9 for n in norms)


def test_gate_rules() -> None:
    assert decide("ease", 0.13, 0.08).passed
    assert not decide("als", 0.10, 0.08).passed  # 0.10 < 1.3 x 0.08
    assert not decide("als", 0.12, 0.08, champion="ease", champion_ndcg=0.13).passed  # > 2% below champion
    assert decide("als", 0.128, 0.08, champion="ease", champion_ndcg=0.13).passed
    other = decide("als", 0.11, 0.08, champion="ease", champion_ndcg=0.13, same_data=False)
    assert other.passed and "other data" in other.reasons[-1]


def test_replace_rows_is_idempotent_and_atomic(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    frame = pl.DataFrame({"d": ["a", "a", "b"], "v": [1, 2, 3]})
    replace_rows(con, "raw.t", frame, {"d": ["a", "b"]})
    replace_rows(con, "raw.t", frame, {"d": ["a", "b"]})
    assert scalar(con, "select count(*) from raw.t") == 3
    with pytest.raises(duckdb.Error):  # the delete ran, the insert fails: both are rolled back
        replace_rows(con, "raw.t", pl.DataFrame({"d": ["a"], "v": ["not a number"]}), {"d": ["a"]})
    assert read_frame(con, "select * from raw.t order by all").rows() == [("a", 1), ("a", 2), ("b", 3)]
    # a table written by an older lbx gains the new column, nulls for the old rows
    replace_rows(con, "raw.t", pl.DataFrame({"d": ["c"], "v": [4], "w": ["new"]}), {"d": ["c"]})
    assert read_frame(con, "select * from raw.t order by all").rows() == [
        ("a", 1, None),
        ("a", 2, None),
        ("b", 3, None),
        ("c", 4, "new"),
    ]
    assert markdown_preview(frame, 1).splitlines()[2] == "| a | 1 |"
