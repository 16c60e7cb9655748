"""The shared shape of every recommender in lbx.

Matrices are users x items in CSR form. Item indices map to TMDb ids through
``Interactions.item_ids``; user indices map to user keys (``source:username``)
through ``Interactions.user_ids``.
"""

from __future__ import annotations

import json
import zipfile
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp


@dataclass
class Interactions:
    """A user x item matrix and the keys of its rows and columns.

    ``matrix`` holds the training signal (a confidence weight > 0 per seen pair);
    ``ratings`` holds the explicit rating per pair, NaN where the user only logged
    the film as watched.
    """

    user_ids: np.ndarray  # dtype object (str): index -> user key
    item_ids: np.ndarray  # dtype int64: index -> tmdb_id
    matrix: sp.csr_matrix
    ratings: sp.csr_matrix | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.matrix.shape[1])


class Recommender(ABC):
    """The base of every model: fit, score, fold in; ``_fitted``, ``save`` and ``load`` live here.

    A subclass names its learnt attributes in ``state`` (all None until ``fit``); the default
    ``save`` writes them to ``arrays.npz`` beside ``model.json`` (name, params), and ``load``
    rebuilds the model as ``cls(**params)`` and sets them back. Override ``_arrays`` /
    ``_restore`` only for state that is not a plain array (a sparse matrix, a scalar).
    """

    name: str  # the registry name (core/recsys/models/__init__.py)
    params: dict[str, Any]
    #: attributes ``fit`` sets, in the order ``_fitted`` returns them
    state: ClassVar[tuple[str, ...]] = ()
    #: hyperparameter configurations ``tune`` tries, best guesses first
    search_space: ClassVar[tuple[dict[str, Any], ...]] = ({},)

    @abstractmethod
    def fit(self, train: sp.csr_matrix, item_features: sp.csr_matrix | None = None) -> Self: ...

    @abstractmethod
    def score_users(self, user_idx: np.ndarray, train: sp.csr_matrix) -> np.ndarray:
        """Dense scores (len(user_idx), n_items) for users seen in training."""

    @abstractmethod
    def fold_in(self, user_row: sp.csr_matrix) -> np.ndarray:
        """Scores (n_items,) for a user absent from training, without retraining."""

    @classmethod
    def accepts(cls, name: str) -> bool:
        """Whether a model saved under registry ``name`` is one of this class."""
        return name == cls.name

    def _fitted(self) -> Any:
        """The ``state`` attributes (one value, or a tuple of them); RuntimeError before ``fit``."""
        values = tuple(getattr(self, attr, None) for attr in self.state)
        if any(v is None for v in values):
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit() first")
        return values[0] if len(values) == 1 else values

    def _arrays(self) -> dict[str, np.ndarray]:
        values = self._fitted()
        return dict(zip(self.state, values if len(self.state) > 1 else (values,), strict=True))

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        for attr in self.state:
            setattr(self, attr, arrays[attr])

    def save(self, path: Path) -> None:
        save_model_files(path, self.name, self.params, **self._arrays())

    @classmethod
    def load(cls, path: Path) -> Self:
        name, params, arrays = load_model_files(path)
        if not cls.accepts(name):
            expected = cls.name if isinstance(cls.name, str) else cls.__name__
            raise ValueError(f"{path} holds a {name!r} model, not {expected!r}; use load_model()")
        model = cls(**params)
        model._restore(arrays)
        return model


# --- the on-disk format ----------------------------------------------------------------------
# A saved model is a directory: model.json ({"name", "params", "format"}) and arrays.npz (plain
# numeric arrays, read with allow_pickle=False). LightFM models saved before the shared format
# (params.json {"class", "params", "feature_shape"} + arrays.npz) are still read.
MODEL_FILE = "model.json"
ARRAYS_FILE = "arrays.npz"
FORMAT_VERSION = 1
_LEGACY_LIGHTFM_FILE = "params.json"


def save_model_files(path: Path, name: str, params: dict[str, Any], **arrays: np.ndarray) -> None:
    """Write ``model.json`` + ``arrays.npz`` into directory ``path`` (created if needed).

    Both files are written to temporary names first and then renamed, so an interrupted
    save never leaves a half-written model behind.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tmp_arrays = path / (ARRAYS_FILE + ".tmp.npz")
    tmp_meta = path / (MODEL_FILE + ".tmp")
    np.savez(tmp_arrays, **arrays)
    tmp_meta.write_text(json.dumps({"name": name, "params": params, "format": FORMAT_VERSION}, indent=2))
    tmp_arrays.replace(path / ARRAYS_FILE)
    tmp_meta.replace(path / MODEL_FILE)


def read_model_meta(path: Path) -> dict[str, Any]:
    """``{"name", "params", ...}`` of the model saved in ``path``."""
    meta_path = Path(path) / MODEL_FILE
    legacy = Path(path) / _LEGACY_LIGHTFM_FILE
    if not meta_path.is_file() and legacy.is_file():
        old = json.loads(legacy.read_text())
        if old.get("class") != "LightFMRecommender" or "mode" not in old.get("params", {}):
            raise ValueError(f"{legacy} is not a saved LightFM model")
        name = f"lightfm_{old['params']['mode']}"
        return {"name": name, "params": old["params"], "feature_shape": old.get("feature_shape", [])}
    if not meta_path.is_file():
        raise FileNotFoundError(f"no saved model at {path}: {MODEL_FILE} is missing")
    meta = json.loads(meta_path.read_text())
    if not isinstance(meta, dict) or "name" not in meta or "params" not in meta:
        raise ValueError(f"{meta_path} is not a model description (needs 'name' and 'params')")
    return meta


def load_model_files(path: Path) -> tuple[str, dict[str, Any], dict[str, np.ndarray]]:
    """``(name, params, arrays)`` of a model saved by ``save_model_files``."""
    meta = read_model_meta(path)
    try:
        arrays = read_arrays(Path(path) / ARRAYS_FILE)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{Path(path) / ARRAYS_FILE} is damaged ({exc})") from exc
    if "feature_shape" in meta:  # a legacy LightFM save kept it in its meta file
        arrays["feature_shape"] = np.asarray(meta["feature_shape"], dtype=np.int64)
    return meta["name"], meta["params"], arrays


#: arrays at least this large are mapped from the file rather than read into memory
MAP_BYTES = 16 * 2**20


def read_arrays(file: Path) -> dict[str, np.ndarray]:
    """The arrays of an ``np.savez`` file. Large ones (EASE's 10k x 10k weights: 400 MB) are
    memory-mapped copy-on-write from the stored zip member, so loading a model costs no read and
    no copy (an onboarding loads two) and writes never reach the file."""
    arrays: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(file) as archive, open(file, "rb") as fh:
        for info in archive.infolist():
            key = info.filename.removesuffix(".npy")
            if info.compress_type != zipfile.ZIP_STORED or info.file_size < MAP_BYTES:
                with archive.open(info) as member:
                    arrays[key] = np.lib.format.read_array(member, allow_pickle=False)
                continue
            fh.seek(info.header_offset)
            local = fh.read(30)
            if local[:4] != b"PK\x03\x04":
                raise ValueError(f"{info.filename}: not a zip member header")
            name_len, extra_len = int.from_bytes(local[26:28], "little"), int.from_bytes(local[28:30], "little")
            fh.seek(info.header_offset + 30 + name_len + extra_len)
            version = np.lib.format.read_magic(fh)
            read_header = (
                np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = read_header(fh)
            if dtype.hasobject:
                raise ValueError(f"{info.filename}: object arrays are not loaded")
            order = "F" if fortran else "C"
            arrays[key] = np.memmap(fh, dtype=dtype, mode="c", offset=fh.tell(), shape=shape, order=order)
    return arrays


def check_train(train: sp.spmatrix) -> sp.csr_matrix:
    """A float32 CSR copy of a users x items training matrix, or a clear error."""
    if not sp.issparse(train):
        raise TypeError(f"train must be a scipy sparse matrix, got {type(train).__name__}")
    csr = sp.csr_matrix(train, dtype=np.float32)
    if csr.ndim != 2 or csr.shape[1] == 0:
        raise ValueError(f"train must be a users x items matrix with items, got {csr.shape}")
    if csr.nnz and not np.all(np.isfinite(csr.data)):
        raise ValueError("train contains NaN or infinite values")
    return csr


def check_row(user_row: sp.spmatrix, n_items: int) -> sp.csr_matrix:
    row = sp.csr_matrix(user_row, dtype=np.float32)
    if row.shape != (1, n_items):
        raise ValueError(f"user_row must have shape (1, {n_items}), got {row.shape}")
    return row
