"""The pure pieces behind new films: blend, discover narrowing, the TMDb feature space, reasons."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import polars as pl
import pytest

from lbx_orchestration.core.recsys.data.content_features import FeatureSpace, film_tokens
from lbx_orchestration.core.recsys.serving.blend import (
    BlendWeights,
    blend_frames,
    fuse_lists,
    on_collaborative_scale,
    recent_share,
)
from lbx_orchestration.core.recsys.serving.new_films import content_reason
from lbx_orchestration.core.tmdb.discover import MAX_PAGES, DiscoverStats, discover_window, month_bounds


def test_fusion_keeps_the_collaborative_order_and_lifts_a_new_film_both_lists_like() -> None:
    cf = np.array([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]])
    cb = np.array([[12, 50, 51, -1]])
    fused = fuse_lists(cf, cb, 12, BlendWeights(0.7, 0.3))[0]
    # 12 is last for the collaborative list but first for the content list: it climbs above 1..10
    assert fused[:3].tolist() == [12, 1, 2] or fused.tolist().index(12) < 11
    assert [i for i in fused if i <= 11] == list(range(1, 12))[: len([i for i in fused if i <= 11])]
    only_cf = fuse_lists(cf, cb, 5, BlendWeights(1.0, 0.0))[0]
    assert only_cf.tolist() == [1, 2, 3, 4, 5]
    # exact scores: 12 gets 0.7/72 + 0.3/61 = 0.01464 > item 1's 0.7/61 = 0.01148
    assert fused[0] == 12
    assert fuse_lists(np.array([[1, -1]]), np.array([[-1, -1]]), 3, BlendWeights())[0].tolist() == [1, -1, -1]
    with pytest.raises(ValueError, match="not both 0"):
        BlendWeights(0.0, 0.0)


def test_blend_frames_renumbers_ranks_and_names_the_source_of_each_row() -> None:
    cf = pl.DataFrame(
        {
            "user_key": ["a"] * 3 + ["b"] * 2,
            "rank": [1, 2, 3, 1, 2],
            "tmdb_id": [10, 11, 12, 10, 13],
            "reason": ["cf"] * 5,
        }
    )
    cb = pl.DataFrame({"user_key": ["a", "a"], "rank": [1, 2], "tmdb_id": [12, 99], "reason": ["new", "new"]})
    out = blend_frames(cf, cb, 3, BlendWeights(0.5, 0.5))
    a = out.filter(pl.col("user_key") == "a")
    assert a["rank"].to_list() == [1, 2, 3]
    assert a["tmdb_id"].to_list()[0] == 12  # in both lists: first
    assert a.filter(pl.col("tmdb_id") == 12)["candidate"].item() == "collaborative"
    assert out.filter(pl.col("user_key") == "b")["tmdb_id"].to_list() == [10, 13]  # no content rows: unchanged
    only_new = blend_frames(cf.clear(), cb, 3, BlendWeights(0.5, 0.5))  # a filter the community has no film for
    assert only_new["tmdb_id"].to_list() == [12, 99] and only_new["candidate"].to_list() == ["content"] * 2
    assert recent_share(np.array([[0, 1, -1], [1, 1, 1]]), np.array([True, False]), 3) == pytest.approx(0.2)


def test_content_picks_are_scored_on_the_collaborative_scale_of_their_place() -> None:
    rows = pl.DataFrame(
        {
            "user_key": ["a"] * 5 + ["b"] * 2 + ["c"],
            "rank": [1, 2, 3, 4, 5, 1, 2, 1],
            "score": [-3.8, 0.33, -3.9, 0.31, -4.0, 0.5, 0.4, -3.7],
            "candidate": ["content", "collaborative", "content", "collaborative", "content"]
            + ["collaborative"] * 2
            + ["content"],
        }
    )
    out = on_collaborative_scale(rows.reverse())  # any row order
    a = out.filter(pl.col("user_key") == "a")
    # first: the score below it; between two: their mean; last: the score above it
    assert a["score"].to_list() == pytest.approx([0.33, 0.33, 0.32, 0.31, 0.31])
    assert a["rank"].to_list() == [1, 2, 3, 4, 5]
    assert out.filter(pl.col("user_key") == "b")["score"].to_list() == [0.5, 0.4]  # no content pick: unchanged
    assert out.filter(pl.col("user_key") == "c")["score"].to_list() == [-3.7]  # nothing to place it by: kept
    assert on_collaborative_scale(rows.drop("score")).equals(rows.drop("score"))


def test_discover_splits_windows_until_each_fits_under_the_page_cap() -> None:
    calls = []

    def fetch(start: dt.date, end: dt.date, page: int) -> dict:
        calls.append((start, end, page))
        days = (end - start).days + 1
        pages = 3 if days <= 7 else MAX_PAGES + 1
        return {"page": page, "total_pages": pages, "results": [{"id": start.toordinal() * 10 + page}]}

    stats = DiscoverStats()
    first, last = month_bounds(dt.date(2024, 2, 1))
    assert (first, last) == (dt.date(2024, 2, 1), dt.date(2024, 2, 29))
    results = discover_window(fetch, first, last, stats)
    # 29 days -> 15 + 14 -> (8 -> 4 + 4) + 7 + 7 + 7: four splits, five windows of at most 7 days
    assert stats.windows == [
        "2024-02-01..2024-02-04",
        "2024-02-05..2024-02-08",
        "2024-02-09..2024-02-15",
        "2024-02-16..2024-02-22",
        "2024-02-23..2024-02-29",
    ]
    assert stats.narrowed == 4 and stats.truncated_days == 0
    assert len(results) == 5 * 3 and len({r["id"] for r in results}) == 15
    assert stats.queries == 9 and stats.pages == 9 + 5 * 2
    # a single day over the cap keeps its first 500 pages and says so
    day = DiscoverStats()
    out = discover_window(lambda s, e, p: {"total_pages": 900, "results": [{"id": p}]}, first, first, day)
    assert len(out) == MAX_PAGES and day.truncated_days == 1
    with pytest.raises(ValueError, match="non-numeric total_pages"):
        discover_window(lambda s, e, p: {"total_pages": "many", "results": []}, first, last)


def _film(i: int, **kw) -> dict:
    row = {
        "tmdb_id": i,
        "genres": None,
        "directors": None,
        "cast_top": None,
        "keywords": None,
        "original_language": None,
        "year": None,
        "runtime": None,
        "vote_count": None,
    }
    row.update(kw)
    return row


def test_feature_space_gives_unseen_films_the_same_columns_and_keeps_partial_metadata() -> None:
    films = pl.DataFrame(
        [
            _film(
                1,
                genres=["Horror"],
                directors=["Carpenter"],
                keywords=["snow"],
                year=1982,
                runtime=109,
                original_language="en",
                vote_count=5000,
            ),
            _film(
                2,
                genres=["Horror", "Drama"],
                directors=["Carpenter"],
                keywords=["snow", "fog"],
                year=1980,
                original_language="en",
                vote_count=800,
            ),
            _film(3, genres=["Drama"], year=2024),
        ]
    )
    space = FeatureSpace.fit(films, min_films=2)
    assert space.vocab["director"] == ["Carpenter"] and space.vocab["keyword"] == ["snow"]
    new = pl.DataFrame([_film(9, genres=["Drama"], year=2024), _film(10, directors=["Carpenter"], vote_count=3000)])
    matrix = space.transform(new)
    assert matrix.shape == (2, len(space.names))
    names = space.names
    assert {names[j] for j in matrix[0].indices} == {"genre:Drama"}  # 2020s is seen once only: dropped
    assert "director:Carpenter" in {names[j] for j in matrix[1].indices}
    np.testing.assert_allclose(np.asarray(matrix.sum(axis=1)).ravel(), [1.0, 1.0], rtol=1e-6)
    assert film_tokens(_film(4, runtime=100, year=1949))["decade"] == ["pre1950"]


def test_reasons_name_the_rated_films_and_what_they_share() -> None:
    candidate = {"director": ["Denis Villeneuve"], "keyword": ["desert", "prophecy"], "genre": ["Science Fiction"]}
    rated = [
        ("Arrival", 5.0, {"director": ["Denis Villeneuve"], "genre": ["Science Fiction"]}),
        ("Lawrence of Arabia", 4.5, {"keyword": ["desert"], "genre": ["Adventure"]}),
        ("Amélie", 5.0, {"genre": ["Comedy"]}),
    ]
    reason = content_reason(candidate, rated)
    assert (
        reason == "like Arrival, which you rated 5★: same director (Denis Villeneuve) / same genres (Science Fiction)"
    )
    heist = {"word": ["heist", "detective", "robbery"], "genre": ["Crime"], "director": ["Someone Else"]}
    loved = [
        ("Amélie", 5.0, {"genre": ["Comedy"]}),
        ("Heat", 5.0, {"word": ["heist", "detective"], "genre": ["Crime"]}),
    ]
    assert content_reason(heist, loved) == (
        "like Heat, which you rated 5★: both about (heist, detective) / same genres (Crime)"
    )
    assert content_reason({"genre": ["Western"]}, rated) == "close to your taste in Western"


def test_thedata_present_ignores_a_few_members_logging_to_this_day() -> None:
    from lbx_orchestration.core.recsys.evaluation.blend_eval import data_present

    community = [dt.datetime(2010 + i % 9, 6, 1) for i in range(990)]  # 2010-2018
    members = [dt.datetime(2026, 1, 1)] * 9
    assert data_present(pl.DataFrame({"ts": community + members})) == 2018
    assert data_present(pl.DataFrame({"ts": community + [dt.datetime(2026, 1, 1)] * 30})) == 2026


def test_films_without_credits_or_keywords_are_placed_by_overview_collection_and_companies() -> None:
    base = {"genres": ["Action"], "original_language": "en", "year": 2023, "runtime": 120}
    films = pl.DataFrame(
        [
            {"tmdb_id": 1, **base, "overview": "A rogue agent hunts a stolen warhead", "collection": "Agent X"},
            {"tmdb_id": 2, **base, "overview": "The rogue agent returns: another warhead", "collection": "Agent X"},
            {"tmdb_id": 3, **base, "overview": "A baker opens a bakery by the seaside", "companies": ["Dough"]},
            {"tmdb_id": 4, **base, "overview": "Seaside bakery rivals", "companies": ["Dough"]},
        ]
    )
    space = FeatureSpace.fit(films, overview="words")
    assert {"collection:Agent X", "company:Dough", "word:rogue", "word:warhead", "word:bakery"} <= set(space.names)
    assert "word:another" not in space.names  # common English words say nothing
    unit = space.transform(films).toarray()
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    similar = unit @ unit.T
    assert similar[0, 1] > similar[0, 2] and similar[2, 3] > similar[2, 1]
    tokens = {int(r["tmdb_id"]): film_tokens(r) for r in films.iter_rows(named=True)}
    reason = content_reason(tokens[2], [("Agent X: First Strike", 4.5, tokens[1])])
    assert reason.startswith("like Agent X: First Strike, which you rated 4.5★: same series (Agent X)")


def test_the_overview_meaning_places_films_that_share_no_word(tmp_path, monkeypatch) -> None:
    """WordLlama, read offline from its own wheel: two heist stories that share no word of four
    letters or more sit closer to each other than to a seaside romance."""
    monkeypatch.setenv("LBX_CACHE_DIR", str(tmp_path))
    base = {"genres": ["Drama"], "original_language": "en", "year": 2023, "runtime": 100}
    films = pl.DataFrame(
        [
            {"tmdb_id": 1, **base, "overview": "A crew of thieves plans to rob a bank vault."},
            {"tmdb_id": 2, **base, "overview": "Burglars attempt the robbery of a casino safe."},
            {"tmdb_id": 3, **base, "overview": "Two lonely people fall in love by the sea."},
            {"tmdb_id": 4, **base, "overview": None},
        ]
    )
    space = FeatureSpace.fit(films, overview="wordllama")
    assert space.overview == "wordllama" and not space.vocab["word"]
    matrix = space.transform(films).toarray()
    overview = matrix[:, [i for i, n in enumerate(space.names) if n.startswith("overview:")]]
    assert overview.shape[1] == 64 and not overview[3].any()  # no overview, no meaning
    unit = overview[:3] / np.linalg.norm(overview[:3], axis=1, keepdims=True)
    assert unit[0] @ unit[1] > unit[0] @ unit[2] + 0.1
    assert (tmp_path / "overview_embeddings.parquet").exists()  # the next transform reads them back
    np.testing.assert_allclose(space.transform(films).toarray(), matrix, atol=1e-6)


def test_votes_and_rating_are_features_and_an_old_space_reads_overviews_as_words(tmp_path) -> None:
    acclaimed = film_tokens(_film(1, vote_count=15000, vote_average=8.4))
    assert acclaimed["votes"] == ["13"] and acclaimed["rating"] == ["8.5"]
    unknown = film_tokens(_film(2, vote_count=5, vote_average=9.0))
    assert unknown["rating"] == []  # five votes say nothing about quality
    old = tmp_path / "feature_space.json"
    old.write_text(json.dumps({"vocab": {"genre": ["Drama"]}, "weights": {"genre": 1.0}}))
    assert FeatureSpace.load(old).overview == "words"


def test_the_nearest_loved_film_is_the_closest_story_when_nothing_else_is_shared() -> None:
    """Offline a recent film has no cast, crew or keywords: of two loved films of its genres the
    one whose overview means the same is named, and the reason says so."""
    from lbx_orchestration.core.recsys.data.overview_embedding import embed_overviews
    from lbx_orchestration.core.recsys.serving.new_films import MEANING

    heist, romance, candidate = embed_overviews(
        [
            "A crew of professional thieves plans to rob a bank vault.",
            "Two lonely people fall in love by the sea.",
            "Burglars attempt the robbery of a casino safe.",
        ]
    )
    rated = [
        ("Seaside Love", 5.0, {"genre": ["Drama"], MEANING: romance}),
        ("Heat", 4.5, {"genre": ["Drama"], MEANING: heist}),
    ]
    reason = content_reason({"genre": ["Drama"], MEANING: candidate}, rated)
    assert reason == "like Heat, which you rated 4.5★: a story close to it / same genres (Drama)"
    # without meaning the tie goes to the better-rated film, named by genre alone
    plain = [(t, r, {"genre": tok["genre"]}) for t, r, tok in rated]
    assert content_reason({"genre": ["Drama"]}, plain) == "like Seaside Love, which you rated 5★: same genres (Drama)"


def test_a_basis_keeps_the_films_it_names_and_the_watchlist() -> None:
    from lbx_orchestration.core.recsys.serving.filtered import basis_observations

    obs = pl.DataFrame(
        {
            "tmdb_id": [1, 2, 3, 4, 5],
            "rating": [5.0, 4.0, 3.0, None, None],
            "seen": [True, True, True, True, False],
            "on_watchlist": [False, False, False, False, True],
            "last_at": [dt.datetime(2020, 1, d) for d in (1, 2, 3, 4, 5)],
        }
    )
    assert basis_observations(obs, "five")["tmdb_id"].to_list() == [1, 5]
    assert basis_observations(obs, "four_up")["tmdb_id"].to_list() == [1, 2, 5]
    assert basis_observations(obs, "three_up")["tmdb_id"].to_list() == [1, 2, 3, 5]
    assert basis_observations(obs, "all").height == 5
    assert basis_observations(obs, "latest50").height == 5  # fewer than 50 seen: all of them
    assert basis_observations(obs.drop("last_at"), "latest50").height == 5


def test_reasons_never_name_plain_words_however_rare() -> None:
    from lbx_orchestration.core.recsys.serving.content_serving import common_words

    overviews = ["A crew plans one last heist, instead of retiring."] + [
        f"Film number {i} is a drama about family {'dinners' if i % 2 else 'holidays'}." for i in range(300)
    ]
    common = common_words(pl.DataFrame({"overview": overviews}))
    assert "instead" in common and "heist" not in common  # both in 1 of 301 overviews
    assert {"family", "drama"} <= common  # in every overview

    def words(overview: str) -> dict[str, list[str]]:
        return {"word": [w for w in film_tokens({"overview": overview})["word"] if w not in common]}

    assert content_reason(words("A heist goes wrong instead."), [("Heat", 5.0, words(overviews[0]))]) == (
        "like Heat, which you rated 5★: both about (heist)"
    )
