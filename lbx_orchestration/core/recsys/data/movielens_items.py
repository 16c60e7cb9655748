"""Film features from a MovieLens ``movies.csv`` (genres, year in the title), for when no TMDb
metadata is at hand; and TMDb vote counts through ``links.csv`` and a TMDb snapshot."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

from lbx_orchestration.core.recsys.data.features import normalize_rows

NO_GENRES = "(no genres listed)"
_YEAR = re.compile(r"\((\d{4})\)\s*$")


def title_year(title: str | None) -> int | None:
    match = _YEAR.search(title or "")
    return int(match.group(1)) if match else None


def _movies_file(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        path = path / "movies.csv"
    if not path.is_file():
        raise FileNotFoundError(f"MovieLens movies file not found: {path}")
    return path


def movielens_item_features(path: str | Path) -> tuple[np.ndarray, sp.csr_matrix, list[str]]:
    """``(movieIds, rows, feature names)``: one-hot genres, the decade and the 5-year bucket of
    the year in the title (``year_unknown`` when there is none). Rows are L1-normalised."""
    path = _movies_file(path)
    raw = pl.read_csv(path, schema_overrides={"movieId": pl.Int64, "title": pl.String, "genres": pl.String})
    missing = {"movieId", "title", "genres"} - set(raw.columns)
    if missing:
        raise ValueError(f"{path} is not a MovieLens movies file: missing column(s) {sorted(missing)}")
    names: dict[str, int] = {}
    rows, cols = [], []
    for i, (title, genres) in enumerate(zip(raw["title"].to_list(), raw["genres"].to_list(), strict=True)):
        year = title_year(title)
        tokens = [f"genre_{g}" for g in (genres or "").split("|") if g and g != NO_GENRES]
        tokens += [f"decade_{year // 10 * 10}", f"years_{year // 5 * 5}"] if year else ["year_unknown"]
        for token in tokens:
            rows.append(i)
            cols.append(names.setdefault(token, len(names)))
    matrix = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(raw.height, len(names)))
    return raw["movieId"].to_numpy().astype(np.int64), normalize_rows(matrix, "l1"), list(names)


def movielens_vote_counts(path: str | Path, snapshot_records: dict[int, dict]) -> dict[int, float]:
    """movieId -> TMDb vote count, through ``links.csv`` beside ``movies.csv``; {} without it."""
    links = _movies_file(path).parent / "links.csv"
    if not links.is_file():
        return {}
    frame = pl.read_csv(links, schema_overrides={"movieId": pl.Int64, "tmdbId": pl.Int64})
    out: dict[int, float] = {}
    for movie_id, tmdb_id in frame.select("movieId", "tmdbId").drop_nulls().iter_rows():
        record = snapshot_records.get(int(tmdb_id))
        if record and record.get("vote_count") is not None:
            out[int(movie_id)] = float(record["vote_count"])
    return out
