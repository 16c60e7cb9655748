"""Assemble the bundled offline TMDb snapshot from public TMDb dumps.

Run once by a maintainer (`make snapshot`); the product never reads the dumps.
Each record has the shape of TMDb's movie-details response with
``append_to_response=credits,keywords``; a field no dump holds stays absent.
``_lbx`` records which dumps contributed and, for films no dump describes, the
MovieLens title so the snapshot can still resolve them by title. The films of 2018-2024
(``recent-2018-2024/``) bring details with overview, collection and production companies (what
the content model reads) but without keywords or credits.

Usage: python scripts/build_tmdb_snapshot.py [--dumps ../shared/data/tmdb]
       [--movielens lbx_orchestration/sample_data/movielens] [--out ...movies.jsonl.gz]
"""

from __future__ import annotations

import argparse
import ast
import csv
import gzip
import io
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lbx_orchestration.core.tmdb.normalize import fix_mojibake, split_movielens_title  # noqa: E402

csv.field_size_limit(sys.maxsize)


def _rows(path: Path) -> list[dict[str, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _num(value: str | None, cast: type = float) -> Any:
    if value in (None, ""):
        return None
    try:
        return cast(float(value)) if cast is int else cast(value)
    except ValueError:
        return None


def _positive(value: Any) -> Any:
    return value if value not in (None, 0, 0.0) else None


def _set(record: dict[str, Any], key: str, value: Any) -> None:
    if value not in (None, "", [], {}) and key not in record:
        record[key] = value


def _set_titles(r: dict[str, Any], row: dict[str, str]) -> None:
    """Title and release date, for the dumps that keep TMDb's own columns."""
    _set(r, "title", row["title"])
    _set(r, "original_title", row["original_title"])
    _set(r, "release_date", row["release_date"])


def _set_figures(r: dict[str, Any], row: dict[str, str]) -> None:
    """The numbers every dump spells the same way; a zero runtime, budget or revenue means unknown."""
    _set(r, "runtime", _positive(_num(row["runtime"], int)))
    _set(r, "budget", _positive(_num(row["budget"], int)))
    _set(r, "revenue", _positive(_num(row["revenue"], int)))
    _set(r, "popularity", _num(row["popularity"]))
    _set(r, "vote_average", _num(row["vote_average"]))
    _set(r, "vote_count", _num(row["vote_count"], int))


def _add_recent(r: dict[str, Any], row: dict[str, str]) -> None:
    """A row of TMDb movie details (2018-2024). The overview, collection and companies are what
    the content model reads of a film nobody has rated (ids and names only); the tagline and
    images are left out."""
    _set_titles(r, row)
    _set(r, "imdb_id", row["imdb_id"])
    genres = ast.literal_eval(row["genres"]) if row["genres"] else []
    _set(r, "genres", [{"id": g["id"], "name": g["name"]} for g in genres])
    _set(r, "original_language", row["original_language"])
    _set(r, "overview", row["overview"].strip())
    collection = ast.literal_eval(row["belongs_to_collection"]) if row["belongs_to_collection"] else None
    if isinstance(collection, dict) and collection.get("name"):
        _set(r, "belongs_to_collection", {"id": collection.get("id"), "name": collection["name"]})
    companies = ast.literal_eval(row["production_companies"]) if row["production_companies"] else []
    _set(r, "production_companies", [{"id": c.get("id"), "name": c["name"]} for c in companies if c.get("name")])
    _set_figures(r, row)
    _set(r, "status", row["status"])


def build(dumps: Path, movielens: Path) -> list[dict[str, Any]]:
    records: dict[int, dict[str, Any]] = {}

    def rec(tmdb_id: int, source: str) -> dict[str, Any]:
        record = records.setdefault(tmdb_id, {"id": tmdb_id, "_lbx": {"sources": []}})
        if source not in record["_lbx"]["sources"]:
            record["_lbx"]["sources"].append(source)
        return record

    for row in _rows(dumps / "tmdb-5000" / "tmdb_5000_movies.csv.gz"):
        r = rec(int(row["id"]), "tmdb-5000")
        _set_titles(r, row)
        _set(r, "genres", json.loads(row["genres"] or "[]"))
        _set(r, "keywords", {"keywords": json.loads(row["keywords"] or "[]")} if row["keywords"] != "[]" else None)
        _set(r, "original_language", row["original_language"])
        _set(r, "overview", row["overview"])
        _set_figures(r, row)
        _set(r, "status", row["status"])

    for row in _rows(dumps / "tmdb-5000" / "tmdb_5000_credits_part5.csv"):
        r = rec(int(row["movie_id"]), "tmdb-5000-credits")
        cast = [
            {"id": c["id"], "name": c["name"], "order": c["order"], "character": c.get("character")}
            for c in json.loads(row["cast"] or "[]")
        ]
        crew = [
            {"id": c["id"], "name": c["name"], "job": c["job"], "department": c["department"]}
            for c in json.loads(row["crew"] or "[]")
        ]
        r["credits"] = {"cast": cast, "crew": crew}

    for row in _rows(dumps / "udacity-tmdb-movies" / "tmdb-movies.csv.gz"):
        r = rec(int(row["id"]), "udacity-tmdb-movies")
        title = fix_mojibake(row["original_title"])
        _set(r, "title", title)
        _set(r, "original_title", title)
        year = _num(row["release_year"], int)
        month_day = row["release_date"].split("/")
        if year and len(month_day) == 3:
            _set(r, "release_date", f"{year:04d}-{int(month_day[0]):02d}-{int(month_day[1]):02d}")
        _set(r, "imdb_id", row["imdb_id"])
        _set(r, "genres", [{"name": g} for g in row["genres"].split("|") if g])
        if row["keywords"] and "keywords" not in r:
            r["keywords"] = {"keywords": [{"name": fix_mojibake(k)} for k in row["keywords"].split("|") if k]}
        _set(r, "overview", fix_mojibake(row["overview"]))
        _set_figures(r, row)
        if "credits" not in r and (row["cast"] or row["director"]):
            r["credits"] = {
                "cast": [{"name": fix_mojibake(n), "order": i} for i, n in enumerate(row["cast"].split("|")) if n],
                "crew": [
                    {"name": fix_mojibake(n), "job": "Director", "department": "Directing"}
                    for n in row["director"].split("|")
                    if n
                ],
            }

    for path in sorted((dumps / "recent-2018-2024").glob("final_tmdb_data_*.csv.gz")):
        for row in _rows(path):
            if not (row.get("id") or "").isdigit() or int(row["id"]) <= 0:
                continue  # each file starts with a row of empty values; a few rows are shifted
            _add_recent(rec(int(float(row["id"])), "recent-2018-2024"), row)

    ml_links = {int(row["movieId"]): int(row["tmdbId"]) for row in _rows(movielens / "links.csv") if row["tmdbId"]}
    for row in _rows(movielens / "movies.csv"):
        tmdb_id = ml_links.get(int(row["movieId"]))
        if tmdb_id is None:
            continue
        r = rec(tmdb_id, "movielens-links")
        title, aka, year = split_movielens_title(row["title"])
        r["_lbx"]["movielens_title"] = title
        if aka:
            r["_lbx"]["movielens_aka"] = aka
        if year:
            r["_lbx"]["movielens_year"] = year

    wanted = set(records)
    keyword_file = dumps / "the-movies-dataset" / "keywords.csv.gz"
    for row in _rows(keyword_file):
        tmdb_id = int(row["id"])
        if tmdb_id not in wanted:
            continue
        r = records[tmdb_id]
        current = r.get("keywords", {}).get("keywords", [])
        if current and all("id" in k for k in current):
            continue
        parsed = ast.literal_eval(row["keywords"] or "[]")
        if parsed:
            r["keywords"] = {"keywords": [{"id": k["id"], "name": k["name"]} for k in parsed]}
            if "the-movies-dataset-keywords" not in r["_lbx"]["sources"]:
                r["_lbx"]["sources"].append("the-movies-dataset-keywords")
    return [records[k] for k in sorted(records)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dumps", type=Path, default=ROOT.parent / "shared" / "data" / "tmdb")
    parser.add_argument("--movielens", type=Path, default=ROOT / "lbx_orchestration" / "sample_data" / "movielens")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "lbx_orchestration" / "sample_data" / "tmdb" / "movies.jsonl.gz"
    )
    args = parser.parse_args(argv)
    records = build(args.dumps, args.movielens)
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=9) as gz:
        for record in records:
            gz.write(json.dumps(record, ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(buf.getvalue())
    with_title = sum(1 for r in records if "title" in r)
    print(f"wrote {len(records)} films ({with_title} with TMDb titles) to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
