from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from lbx_orchestration.core.recsys.data.features import (
    MISSING_FEATURE,
    item_feature_matrix,
    tfidf_block,
)

FRAME = pl.DataFrame(
    {
        "tmdb_id": [603, 27205, 155],
        "title": ["The Matrix", "Inception", "The Dark Knight"],
        "genre_drama": [0, 1, 1],
        "decade_1990s": [1, 0, 0],
        "lang_en": [True, True, None],
        "runtime_q2": [None, 0.0, 3.0],
    }
)


def test_rows_follow_the_model_item_order_and_missing_films_are_flagged() -> None:
    matrix, names = item_feature_matrix(np.array([155, 13, 603]), FRAME)
    assert names == ["genre_drama", "decade_1990s", "lang_en", "runtime_q2", MISSING_FEATURE]
    assert isinstance(matrix, sp.csr_matrix)
    np.testing.assert_allclose(
        matrix.toarray(),
        [
            [0.25, 0.0, 0.0, 0.75, 0.0],  # 155: drama 1, lang null->0, runtime 3; L1 = 4
            [0.0, 0.0, 0.0, 0.0, 1.0],  # 13: not in the frame
            [0.0, 0.5, 0.5, 0.0, 0.0],  # 603: 1990s, en
        ],
        rtol=1e-6,
    )


def test_without_the_indicator_a_missing_film_is_an_all_zero_row() -> None:
    matrix, names = item_feature_matrix(np.array([13, 27205]), FRAME, missing_indicator=False, norm="l2")
    assert MISSING_FEATURE not in names
    dense = matrix.toarray()
    assert not dense[0].any()
    np.testing.assert_allclose(dense[1], [1 / np.sqrt(2), 0, 1 / np.sqrt(2), 0], rtol=1e-6)


def test_bad_frames_are_refused_with_the_cause() -> None:
    with pytest.raises(ValueError, match="feature frame has no id column 'tmdb_id'"):
        item_feature_matrix(np.array([1]), FRAME.rename({"tmdb_id": "id"}))
    with pytest.raises(ValueError, match=r"duplicate ids, e.g. \[603\]"):
        item_feature_matrix(np.array([1]), pl.concat([FRAME, FRAME.head(1)]))


def test_tfidf_block_is_aligned_weighted_and_renormalised() -> None:
    base, names = item_feature_matrix(np.array([603, 13]), FRAME.select("tmdb_id", "genre_drama", "decade_1990s"))
    tfidf = sp.csr_matrix(np.array([[0.0, 0.2], [0.3, 0.1]]))
    stacked, all_names = tfidf_block(
        base,
        names,
        np.array([603, 13]),
        tfidf,
        np.array([999, 603]),
        ["hacker", "dream"],
        weight=0.5,
    )
    assert all_names == ["genre_drama", "decade_1990s", MISSING_FEATURE, "kw_hacker", "kw_dream"]
    # 603: base [0, 1, 0] + 0.5 * [0.75, 0.25] -> sums to 1.5
    np.testing.assert_allclose(
        stacked.toarray(),
        [[0, 1 / 1.5, 0, 0.375 / 1.5, 0.125 / 1.5], [0, 0, 1, 0, 0]],
        rtol=1e-6,
    )
    with pytest.raises(ValueError, match=r"tfidf matrix shape \(2, 2\) does not match 2 ids x 3"):
        tfidf_block(base, names, np.array([603, 13]), tfidf, np.array([1, 2]), ["a", "b", "c"])
