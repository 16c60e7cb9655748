"""The parts of film search: BM25 over title, original title, overview, keywords, director and
cast, LSA (TF-IDF reduced by truncated SVD, offline from scikit-learn alone), reciprocal rank
fusion; and item vectors for "more like this". ``film_search.FilmSearch`` puts them together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer

from lbx_orchestration.core.search_text import tokenize

RRF_K = 60
# how often each field's tokens count in a film's document (a crude BM25F)
FIELD_WEIGHTS = {"title": 3, "original_title": 2, "directors": 2, "cast_top": 1, "keywords": 1, "overview": 1}


def _field_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple | pl.Series):
        return " ".join(str(v) for v in value if v)
    return str(value)


def film_documents(films: pl.DataFrame, weights: dict[str, int] = FIELD_WEIGHTS) -> list[list[str]]:
    """Token lists, one per row of ``films`` (any of the ``weights`` columns may be missing)."""
    fields = [f for f in weights if f in films.columns]
    docs = []
    for row in films.select(fields).iter_rows(named=True):
        tokens: list[str] = []
        for field in fields:
            tokens.extend(tokenize(_field_text(row[field])) * weights[field])
        docs.append(tokens)
    return docs


def _identity(tokens: list[str]) -> list[str]:
    return tokens


class Bm25:
    """Okapi BM25 with the per-document term weights precomputed in one sparse matrix."""

    def __init__(self, docs: Sequence[list[str]], k1: float = 1.2, b: float = 0.75) -> None:
        vocab: dict[str, int] = {}
        rows, cols = [], []
        for d, tokens in enumerate(docs):
            for t in tokens:
                rows.append(d)
                cols.append(vocab.setdefault(t, len(vocab)))
        n = len(docs)
        tf = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, max(len(vocab), 1)))
        tf.sum_duplicates()
        lengths = np.asarray(tf.sum(axis=1)).ravel()
        avg = lengths.mean() if n and lengths.mean() > 0 else 1.0
        df = np.bincount(tf.indices, minlength=tf.shape[1])
        idf = np.log1p((n - df + 0.5) / (df + 0.5))
        norm = k1 * (1 - b + b * lengths / avg)
        data = tf.data.copy()
        row_of = np.repeat(np.arange(n), np.diff(tf.indptr))
        data = idf[tf.indices] * data * (k1 + 1) / (data + norm[row_of])
        self.weights = sp.csr_matrix((data, tf.indices, tf.indptr), shape=tf.shape).tocsc()
        self.vocab = vocab

    def scores(self, query: list[str]) -> np.ndarray:
        cols = sorted({self.vocab[t] for t in query if t in self.vocab})
        if not cols:
            return np.zeros(self.weights.shape[0])
        return np.asarray(self.weights[:, cols].sum(axis=1)).ravel()


def _unit(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1.0)


class Lsa:
    """TF-IDF reduced to ``dims`` dimensions by truncated SVD: films close in meaning share
    directions even when they share no word with the query."""

    def __init__(self, docs: Sequence[list[str]], dims: int = 128, seed: int = 0) -> None:
        self.vectorizer = TfidfVectorizer(analyzer=_identity, sublinear_tf=True, min_df=1)
        tfidf = self.vectorizer.fit_transform(list(docs))
        dims = max(1, min(dims, tfidf.shape[0] - 1, tfidf.shape[1] - 1))
        self.svd = TruncatedSVD(n_components=dims, random_state=seed)
        self.vectors = _unit(self.svd.fit_transform(tfidf)).astype(np.float32)

    def embed(self, query: list[str]) -> np.ndarray | None:
        vec = self.vectorizer.transform([query])
        if vec.nnz == 0:
            return None
        return _unit(self.svd.transform(vec)).astype(np.float32)[0]

    def scores(self, query: list[str]) -> np.ndarray | None:
        q = self.embed(query)
        return None if q is None else self.vectors @ q


def _ranking(scores: np.ndarray, depth: int, floor: float = 0.0) -> np.ndarray:
    top = (
        np.argpartition(-scores, min(depth, len(scores) - 1))[:depth] if len(scores) > depth else np.arange(len(scores))
    )
    top = top[scores[top] > floor]
    return top[np.argsort(-scores[top], kind="stable")]


@dataclass(frozen=True)
class Hit:
    index: int
    score: float  # the fused reciprocal-rank score
    lexical_rank: int | None
    dense_rank: int | None
    title_rank: int | None = None  # rank by character trigrams of the film's names
    match: str = "text"  # "title", "leading title", "person", "language" or "text"


def reciprocal_rank_fusion(rankings: Sequence[np.ndarray], k: int = RRF_K) -> list[tuple[int, float, list[int | None]]]:
    fused: dict[int, float] = {}
    ranks: dict[int, list[int | None]] = {}
    for r, ranking in enumerate(rankings):
        for position, index in enumerate(ranking.tolist(), start=1):
            fused[index] = fused.get(index, 0.0) + 1.0 / (k + position)
            ranks.setdefault(index, [None] * len(rankings))[r] = position
    order = sorted(fused, key=lambda i: (-fused[i], i))
    return [(i, fused[i], ranks[i]) for i in order]


def interaction_vectors(
    item_index: dict[int, int], interactions: pl.DataFrame, dims: int = 64, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Collaborative item vectors: truncated SVD of the items x users matrix of seen films
    (rows of unit norm), and a mask of the films anyone has seen."""
    n = len(item_index)
    frame = interactions.select("user_key", "tmdb_id").unique()
    users = {u: i for i, u in enumerate(frame["user_key"].unique().to_list())}
    rows = [item_index.get(int(t), -1) for t in frame["tmdb_id"].to_list()]
    cols = [users[u] for u in frame["user_key"].to_list()]
    keep = [i for i, r in enumerate(rows) if r >= 0]
    matrix = sp.csr_matrix(
        (np.ones(len(keep)), ([rows[i] for i in keep], [cols[i] for i in keep])), shape=(n, max(len(users), 1))
    )
    seen = np.asarray(matrix.sum(axis=1)).ravel() > 0
    dims = max(1, min(dims, matrix.shape[0] - 1, matrix.shape[1] - 1))
    if matrix.nnz == 0:
        return np.zeros((n, 1), np.float32), seen
    # idf-like damping so blockbusters do not sit next to everything
    weights = np.log1p(matrix.shape[1] / np.maximum(np.asarray(matrix.sum(axis=0)).ravel(), 1))
    vectors = TruncatedSVD(n_components=dims, random_state=seed).fit_transform(matrix @ sp.diags(weights))
    return _unit(vectors).astype(np.float32), seen


def item_vectors(
    content: np.ndarray, collaborative: np.ndarray, has_collaborative: np.ndarray, collaborative_weight: float = 0.75
) -> np.ndarray:
    """One unit vector per film: collaborative and content parts side by side, so a dot
    product blends both cosines; a film nobody has seen is placed by its content alone."""
    cf = collaborative * (np.sqrt(collaborative_weight) * has_collaborative[:, None])
    ct = content * np.where(has_collaborative, np.sqrt(1 - collaborative_weight), 1.0)[:, None]
    return _unit(np.hstack([cf, ct])).astype(np.float32)


def most_similar(
    vectors: np.ndarray, index: int, limit: int, allowed: np.ndarray | None = None
) -> list[tuple[int, float]]:
    scores = vectors @ vectors[index]
    scores[index] = -np.inf
    if allowed is not None:
        scores[~allowed] = -np.inf
    top = _ranking(scores, limit, floor=-np.inf)
    return [(int(i), float(scores[i])) for i in top[:limit] if np.isfinite(scores[i])]
