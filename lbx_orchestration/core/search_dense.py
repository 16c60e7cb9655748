"""Two more retrievers for film search: WordLlama sentence embeddings of what a film is about
(offline: the wheel carries its weights), and character trigrams of the titles, which find a
title through a misspelling."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer


@cache
def _wordllama() -> Any:
    import wordllama

    return wordllama.WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)


def _unit(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1.0)


class WordLlamaIndex:
    """Cosine between the query and each film's "title. overview. keywords. genres" text."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.vectors = _unit(np.asarray(_wordllama().embed(list(texts), norm=False), dtype=np.float32))
        self.has_text = np.array([bool(t.strip()) for t in texts])

    def scores(self, query: str) -> np.ndarray | None:
        if not query.strip():
            return None
        q = _unit(np.asarray(_wordllama().embed([query], norm=False), dtype=np.float32))[0]
        return np.where(self.has_text, self.vectors @ q, 0.0)


class TitleTrigrams:
    """TF-IDF of character trigrams over every name of a film; a film scores its best name."""

    def __init__(self, names: Sequence[Sequence[str]]) -> None:
        rows, texts = [], []
        for i, film_names in enumerate(names):
            for name in film_names:
                if name:
                    rows.append(i)
                    texts.append(name)
        self.films = len(names)
        self.vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 3), sublinear_tf=True)
        self.matrix = self.vectorizer.fit_transform(texts or [" "]) if texts else None
        self.owner = np.asarray(rows, dtype=np.int64)

    def scores(self, query_key: str) -> np.ndarray:
        out = np.zeros(self.films)
        if self.matrix is None or not query_key:
            return out
        q = self.vectorizer.transform([query_key])
        if q.nnz == 0:
            return out
        cosine = sp.csr_matrix(self.matrix @ q.T).toarray().ravel()
        np.maximum.at(out, self.owner, cosine)
        return out
