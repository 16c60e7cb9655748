"""Download, verify and unpack a MovieLens data set from GroupLens (or a mirror).

The zip is downloaded to ``<dest>/<name>.zip.part`` (resumed with an HTTP Range request when
a previous attempt was cut), checked against GroupLens' published MD5, unpacked into a
temporary folder beside the destination and renamed into place only when every step passed.
A wrong checksum, a broken zip or a hostile entry leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path, PurePosixPath

GROUPLENS_BASE_URL = "https://files.grouplens.org/datasets/movielens"
DATASETS = ("ml-latest-small", "ml-25m", "ml-32m")
REQUIRED_FILES = ("ratings.csv", "movies.csv", "links.csv")
USER_AGENT = "lbx (https://github.com/; MovieLens fetch)"
CHUNK = 1 << 20
#: a generous cap on what a MovieLens zip may unpack to (ml-32m is ~0.9 GB)
MAX_UNPACKED_BYTES = 8 << 30

Progress = Callable[[int, int | None], None]


class FetchError(Exception):
    """The data set could not be fetched; the message names the cause. Nothing was kept."""


class DownloadInterrupted(FetchError):
    """The connection failed every retry; the partial download is kept for the next run to resume."""


@dataclass(frozen=True)
class FetchResult:
    name: str
    directory: Path
    md5: str
    zip_bytes: int
    resumed_from: int
    attempts: int
    license_text: str


def parse_md5(text: str, name: str) -> str:
    """The hash in a ``.md5`` file: ``<hash>  <name>.zip``, ``MD5 (<name>.zip) = <hash>`` or bare."""
    hashes = re.findall(r"\b[0-9a-fA-F]{32}\b", text)
    if not hashes:
        raise FetchError(f"{name}.zip.md5 holds no MD5 hash (got {text[:80]!r})")
    return hashes[0].lower()


def _open(url: str, timeout: float, start: int = 0):
    headers = {"User-Agent": USER_AGENT}
    if start:
        headers["Range"] = f"bytes={start}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def _expected_md5(base_url: str, name: str, timeout: float) -> str:
    url = f"{base_url}/{name}.zip.md5"
    try:
        with _open(url, timeout) as resp:
            return parse_md5(resp.read(4096).decode("utf-8", "replace"), name)
    except urllib.error.HTTPError as exc:
        raise FetchError(f"could not read the checksum {url}: HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError, HTTPException) as exc:
        raise FetchError(f"could not read the checksum {url}: {exc}") from exc


def _download_once(url: str, part: Path, timeout: float, progress: Progress | None) -> int:
    """One attempt: appends to ``part`` from its current size. Returns the byte it resumed from."""
    start = part.stat().st_size if part.exists() else 0
    try:
        resp = _open(url, timeout, start)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:  # asked past the end: the part is whole, or stale
            return start
        raise
    with resp:
        total: int | None = None
        if start and resp.status == 206:
            match = re.match(r"bytes (\d+)-\d+/(\d+|\*)", resp.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != start:
                raise FetchError(
                    f"{url} answered a resume with an unexpected range: {resp.headers.get('Content-Range')!r}"
                )
            total = int(match.group(2)) if match.group(2) != "*" else None
            mode = "ab"
        else:  # no range support (200): start over
            start, mode = 0, "wb"
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        done = start
        with part.open(mode) as out:
            while chunk := resp.read(CHUNK):
                out.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
        if total is not None and done < total:
            raise ConnectionError(f"connection closed after {done:,} of {total:,} bytes")
    return start


def download(
    url: str,
    part: Path,
    *,
    timeout: float = 60.0,
    retries: int = 3,
    progress: Progress | None = None,
    backoff: float = 1.0,
) -> int:
    """Downloads ``url`` into ``part``, resuming a cut transfer up to ``retries`` times.

    Returns how many attempts it took.
    """
    for attempt in range(retries + 1):
        try:
            _download_once(url, part, timeout, progress)
            return attempt + 1
        except urllib.error.HTTPError as exc:
            raise FetchError(f"could not download {url}: HTTP {exc.code}") from exc
        except (urllib.error.URLError, OSError, HTTPException) as exc:
            if attempt == retries:
                kept = part.stat().st_size if part.exists() else 0
                raise DownloadInterrupted(
                    f"download of {url} failed after {retries + 1} attempts: {exc} "
                    f"(run the command again to resume from byte {kept:,})"
                ) from exc
            time.sleep(backoff * (attempt + 1))
    raise AssertionError("unreachable")


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _safe_members(archive: zipfile.ZipFile, label: str) -> list[zipfile.ZipInfo]:
    members = archive.infolist()
    total = 0
    for info in members:
        path = PurePosixPath(info.filename.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or (path.parts and path.parts[0].endswith(":")):
            raise FetchError(f"{label} has an entry that points outside its folder: {info.filename!r}")
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise FetchError(f"{label} has a symbolic link entry: {info.filename!r}")
        total += info.file_size
        if total > MAX_UNPACKED_BYTES:
            raise FetchError(f"{label} would unpack to more than {MAX_UNPACKED_BYTES >> 30} GB")
    return members


def _dataset_root(unpacked: Path, label: str) -> Path:
    candidates = sorted(p.parent for p in unpacked.rglob("ratings.csv"))
    if not candidates:
        raise FetchError(f"{label} has no ratings.csv: not a MovieLens data set")
    root = candidates[0]
    missing = [f for f in REQUIRED_FILES if not (root / f).exists()]
    if missing:
        raise FetchError(f"{label} lacks {', '.join(missing)} beside ratings.csv")
    return root


def unpack(zip_path: Path, target: Path, label: str) -> Path:
    """Unpacks into a temporary folder beside ``target`` and renames it into place."""
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.unpack-", dir=target.parent))
    try:
        try:
            with zipfile.ZipFile(zip_path) as archive:
                members = _safe_members(archive, label)
                bad = archive.testzip()
                if bad is not None:
                    raise FetchError(f"{label} is damaged: {bad!r} fails its CRC check")
                archive.extractall(work, members)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
            raise FetchError(f"{label} is not a readable zip: {exc}") from exc
        root = _dataset_root(work, label)
        old = target.with_name(f".{target.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if target.exists():
            target.replace(old)
        root.replace(target)
        shutil.rmtree(old, ignore_errors=True)
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)


def license_terms(directory: Path) -> str:
    """The "Usage License" section of the data set's README, as GroupLens wrote it."""
    readme = next((p for p in (directory / "README.txt", directory / "README.md") if p.exists()), None)
    if readme is None:
        return (
            "(no README in the data set) MovieLens data sets are licensed by GroupLens for research; "
            "see https://grouplens.org/datasets/movielens/ before any other use."
        )
    text = readme.read_text(encoding="utf-8", errors="replace")
    match = re.search(r"Usage License\s*\n=+\s*\n(.*?)(?:\n[^\n]+\n=+\s*\n|\Z)", text, re.S)
    return (match.group(1) if match else text).strip()


def fetch_movielens(
    name: str,
    dest: Path,
    *,
    base_url: str = GROUPLENS_BASE_URL,
    timeout: float = 60.0,
    retries: int = 3,
    progress: Progress | None = None,
    backoff: float = 1.0,
) -> FetchResult:
    if name not in DATASETS:
        raise FetchError(f"unknown MovieLens data set {name!r}: choose one of {', '.join(DATASETS)}")
    base_url = base_url.rstrip("/")
    dest.mkdir(parents=True, exist_ok=True)
    expected = _expected_md5(base_url, name, timeout)
    part = dest / f"{name}.zip.part"
    label = f"{name}.zip"
    resumed_from = part.stat().st_size if part.exists() else 0
    try:
        attempts = download(
            f"{base_url}/{name}.zip", part, timeout=timeout, retries=retries, progress=progress, backoff=backoff
        )
        actual = file_md5(part)
        if actual != expected:
            raise FetchError(
                f"{label} does not match its published checksum (expected {expected}, "
                f"got {actual}); the download was deleted, nothing was kept"
            )
        size = part.stat().st_size
        directory = unpack(part, dest / name, label)
    except DownloadInterrupted:
        raise  # the .part stays so the next run resumes
    except FetchError:
        part.unlink(missing_ok=True)
        raise
    part.unlink(missing_ok=True)
    return FetchResult(
        name=name,
        directory=directory,
        md5=expected,
        zip_bytes=size,
        resumed_from=resumed_from,
        attempts=attempts,
        license_text=license_terms(directory),
    )
