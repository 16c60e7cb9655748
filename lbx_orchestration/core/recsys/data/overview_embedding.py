"""What a film is about, from its TMDb overview: a WordLlama sentence embedding, offline.

WordLlama's wheel carries its 256-dimensional token weights and its tokenizer, and reads them
from its own package folder without the network (it looks for ``tokenizers/``, which the wheel
ships). Its dimensions are ordered by importance (Matryoshka training), so the first ``DIMS``
are a smaller embedding of the same text; 64 won the cold-film protocol's validation against
128, 256 and 32 for the content baseline. Which reading of the overview the served content
model uses is measured in docs/evaluation.md, section 6; the reasons use this embedding
whatever the model reads (``serving/new_films.py``).

Embedding ~7,000 overviews takes a few seconds; vectors are kept per text in a Parquet file in
the cache folder, so the nightly refit and serving only embed overviews they have not met.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

DIMS = 64
MODEL = "l2_supercat_256"
CACHE_FILE = "overview_embeddings.parquet"


@cache
def _model() -> Any:
    import wordllama

    return wordllama.WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)


def _key(text: str) -> str:
    return hashlib.sha1(f"{MODEL}\0{text}".encode()).hexdigest()[:20]


def _read_cache(path: Path | None) -> dict[str, np.ndarray]:
    if path is None:
        return {}
    try:
        frame = pl.read_parquet(path)
    except (OSError, pl.exceptions.ComputeError):
        return {}
    vectors = np.asarray(frame["vector"].to_list(), dtype=np.float32).reshape(frame.height, -1)
    if vectors.shape[1] != DIMS:
        return {}
    return dict(zip(frame["key"].to_list(), vectors, strict=True))


def _write_cache(path: Path, known: dict[str, np.ndarray]) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        frame = pl.DataFrame(
            {"key": list(known), "vector": [v.tolist() for v in known.values()]},
            schema={"key": pl.Utf8, "vector": pl.List(pl.Float32)},
        )
        frame.write_parquet(tmp)
        os.replace(tmp, path)
    except OSError:  # a read-only cache folder only costs the embedding next time
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def embed_overviews(texts: list[str | None], cache_path: Path | None = None) -> np.ndarray:
    """One unit-length row of ``DIMS`` per text; a missing or blank overview gets zeros."""
    out = np.zeros((len(texts), DIMS), dtype=np.float32)
    rows = [(i, t.strip()) for i, t in enumerate(texts) if t and t.strip()]
    if not rows:
        return out
    known = _read_cache(cache_path)
    keys = [_key(t) for _, t in rows]
    missing = sorted({t for (_, t), k in zip(rows, keys, strict=True) if k not in known})
    if missing:
        vectors = np.asarray(_model().embed(missing, norm=False), dtype=np.float32)[:, :DIMS]
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
        known.update(zip((_key(t) for t in missing), vectors, strict=True))
        if cache_path is not None:
            _write_cache(cache_path, known)
    for (i, _), k in zip(rows, keys, strict=True):
        out[i] = known[k]
    return out
