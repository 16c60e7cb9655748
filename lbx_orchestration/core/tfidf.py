"""Keyword TF-IDF over TMDb keywords: a sparse long table (tmdb_id, keyword, weight)."""

from __future__ import annotations

import polars as pl
from sklearn.feature_extraction.text import TfidfVectorizer

TFIDF_SCHEMA = {"tmdb_id": pl.Int64, "keyword": pl.Utf8, "weight": pl.Float64}


def _identity(tokens: list[str]) -> list[str]:
    return tokens


def keyword_tfidf(movies: pl.DataFrame, min_df: int = 2, max_features: int = 5000) -> pl.DataFrame:
    """``movies`` has tmdb_id and keywords (list of names); films without keywords are left out.

    Keywords are whole tokens (``"based on novel"`` is one term); rows are L2-normalised.
    """
    docs = movies.filter(pl.col("keywords").list.len() > 0)
    if docs.is_empty():
        return pl.DataFrame(schema=TFIDF_SCHEMA)
    tokens = [[k.strip().lower() for k in kws if k and k.strip()] for kws in docs["keywords"].to_list()]
    vectorizer = TfidfVectorizer(
        analyzer=_identity,
        min_df=min(min_df, len(tokens)),
        max_features=max_features,
        sublinear_tf=True,
        norm="l2",
    )
    matrix = vectorizer.fit_transform(tokens).tocoo()
    vocab = vectorizer.get_feature_names_out()
    ids = docs["tmdb_id"].to_numpy()
    return pl.DataFrame(
        {"tmdb_id": ids[matrix.row], "keyword": vocab[matrix.col], "weight": matrix.data},
        schema=TFIDF_SCHEMA,
    ).sort("tmdb_id", "weight", descending=[False, True])
