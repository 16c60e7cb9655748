"""`lbx`: recommendations, imports, crawls, TMDb look-ups and evaluation from the terminal."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from lbx_orchestration.core.warehouse import connect, duckdb_path, read_frame, table_exists


def _table(rows: list[dict], columns: Sequence[str], widths: dict[str, int] | None = None) -> str:
    widths = dict(widths or {})
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    for i, c in enumerate(columns):
        natural = max([len(c), *(len(row[i]) for row in cells)])
        widths[c] = min(widths.get(c, natural), natural)
    def fit(text: str, width: int) -> str:
        return text if len(text) <= width else text[: width - 1] + "…"
    lines = ["  ".join(c.ljust(widths[c]) for c in columns), "  ".join("-" * widths[c] for c in columns)]
    for row in cells:
        lines.append("  ".join(fit(v, widths[c]).ljust(widths[c]) for v, c in zip(row, columns, strict=True)))
    return "\n".join(lines)


def cmd_recs(args: argparse.Namespace) -> int:
    db = Path(args.db) if args.db else duckdb_path()
    if not db.exists():
        print(f"no warehouse at {db}: run `make demo` first (or set LBX_DUCKDB_PATH)", file=sys.stderr)
        return 1
    with connect(db, read_only=True) as con:
        if not table_exists(con, "serving.user_recommendations"):
            print(f"{db} has no serving.user_recommendations yet: materialize user_recommendations",
                  file=sys.stderr)
            return 1
        params: list = [args.username]
        where = "username = ?"
        if args.source:
            where += " and source = ?"
            params.append(args.source)
        recs = read_frame(
            con,
            f"select rank, title, year, round(score, 3) as score, reason, source, model from "
            f"serving.user_recommendations where {where} order by source, rank limit ?",
            [*params, args.limit],
        )
    if recs.height == 0:
        print(f"unknown user {args.username!r}: no recommendations in {db} "
              "(import their Letterboxd export with `lbx import`)", file=sys.stderr)
        return 1
    first = recs.row(0, named=True)
    print(f"Recommendations for {args.username} ({first['source']}, model {first['model']}):\n")
    print(_table(recs.to_dicts(), ["rank", "title", "year", "score", "reason"], {"title": 40, "reason": 90}))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from lbx_orchestration.core.importer import import_export
    from lbx_orchestration.core.letterboxd.export import ExportError
    from lbx_orchestration.resources import build_resources

    tmdb = build_resources()["tmdb"]  # live TMDb search when a key is set, else the snapshot
    try:
        with connect(args.db or None) as con:
            report = import_export(con, Path(args.path), username=args.username, tmdb_source=tmdb.source())
    except (ExportError, FileNotFoundError) as exc:
        print(f"import refused: {exc}", file=sys.stderr)
        return 1
    counts = report.counts
    print(f"{report.username}: {report.status} (export {report.content_sha256[:12]})")
    print(f"  rated {counts.get('rated', 0)}, watched {counts.get('watched', 0)}, "
          f"on the watchlist {counts.get('watchlist', 0)}, diary entries {counts.get('diary', 0)}")
    print(f"  films resolved to TMDb ids: {report.resolved} of {report.films} ({report.resolved_share:.0%})")
    if report.status != "unchanged":
        print("  next: materialize the graph (or let the inbox sensor fold this user in) for recommendations")
    return 0


def cmd_crawl(args: argparse.Namespace) -> int:
    from lbx_orchestration.core.crawl.runner import CrawlBlocked, CrawlError, run_crawl
    from lbx_orchestration.core.crawl.settings import cli_download_delay

    try:
        overrides = {"download_delay": cli_download_delay(args.delay)} if args.delay is not None else None
        result = run_crawl(args.kind, list(args.users), base_url=args.base_url,
                           out=Path(args.out) if args.out else None, settings_override=overrides)
    except CrawlBlocked as exc:
        print(f"crawl stopped: {exc}", file=sys.stderr)
        return 3
    except (CrawlError, ValueError) as exc:
        print(f"crawl failed: {exc}", file=sys.stderr)
        return 1
    stats = result.stats
    print(f"{len(result.items)} items from {stats.get('pages', 0)} pages "
          f"({stats.get('requests', 0)} requests, 429s {stats.get('status_429', 0)}, "
          f"empty pages {stats.get('empty_pages', 0)})" + (f"; written to {args.out}" if args.out else ""))
    return 0


def cmd_tmdb(args: argparse.Namespace) -> int:
    from lbx_orchestration.core.tmdb.base import TmdbAuthError, TmdbError
    from lbx_orchestration.core.tmdb.flatten import flatten_details

    try:
        if args.snapshot:
            from lbx_orchestration.core.tmdb.snapshot import TmdbSnapshot

            source = TmdbSnapshot()
        else:
            from lbx_orchestration.core.tmdb.client import TmdbClient

            kwargs = {"base_url": args.base_url} if args.base_url else {}
            source = TmdbClient.from_env(**kwargs)
        details = source.movie_details(args.id)
    except TmdbAuthError as exc:
        print(f"TMDb refused: {exc}", file=sys.stderr)
        return 2
    except TmdbError as exc:
        print(f"TMDb error: {exc}", file=sys.stderr)
        return 1
    if details is None:
        print(f"TMDb has no movie {args.id}", file=sys.stderr)
        return 1
    print(json.dumps(flatten_details(details), indent=2, ensure_ascii=False))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from lbx_orchestration.core.recsys.protocol import DEFAULT_MODELS, read_movielens_ratings, run_protocol

    if args.split == "cold-films":
        return _eval_cold_films(args)
    if args.items:
        print("--items is only used by --split cold-films", file=sys.stderr)
        return 2

    features = None
    if args.ratings:
        observations = read_movielens_ratings(args.ratings)
        source = args.ratings
    else:
        from lbx_orchestration.models.data import load_training_data

        db = Path(args.db) if args.db else duckdb_path()
        try:
            observations, features = load_training_data(db)
        except FileNotFoundError as exc:
            print(f"{exc}, or pass --ratings", file=sys.stderr)
            return 1
        source = str(db)
    models = tuple(args.models.split(",")) if args.models else DEFAULT_MODELS
    relevance = None if args.relevance in ("none", "all") else float(args.relevance)
    report = run_protocol(observations, split=args.split, test_frac=args.test_frac, relevance=relevance,
                          models=models, item_features=features, seed=args.seed,
                          budget=args.budget or None)
    if args.json:
        print(report.to_json())
    else:
        print(f"Evaluation of {source}\n")
        print(report.to_markdown())
    return 0


def _eval_cold_films(args: argparse.Namespace) -> int:
    from lbx_orchestration.core.recsys.cold import COLD_MODELS, DEFAULT_COLD_FRAC, run_cold_protocol
    from lbx_orchestration.core.recsys.protocol import read_movielens_ratings

    features, votes = None, {}
    if args.items and not args.ratings:
        print("--items gives MovieLens ids: pass the matching --ratings too", file=sys.stderr)
        return 2
    try:
        if args.items:
            from lbx_orchestration.core.recsys.movielens_items import movielens_item_features, movielens_vote_counts
            from lbx_orchestration.core.tmdb.snapshot import TmdbSnapshot

            ids, matrix, _ = movielens_item_features(args.items)
            features = (ids, matrix)
            votes = movielens_vote_counts(args.items, TmdbSnapshot().records)
        if args.ratings:
            observations, source = read_movielens_ratings(args.ratings), args.ratings
        else:
            from lbx_orchestration.models.data import load_training_data, load_vote_counts

            db = Path(args.db) if args.db else duckdb_path()
            observations, db_features = load_training_data(db)
            features = features or db_features
            votes = votes or load_vote_counts(db)
            source = str(db)
    except (FileNotFoundError, ValueError) as exc:
        print(f"{exc}", file=sys.stderr)
        return 1
    if features is None:
        print("--split cold-films needs film features: pass --items movies.csv or use the warehouse", file=sys.stderr)
        return 1
    models = tuple(args.models.split(",")) if args.models else COLD_MODELS
    relevance = None if args.relevance in ("none", "all") else float(args.relevance)
    try:
        report = run_cold_protocol(observations, features, votes, test_frac=args.test_frac or DEFAULT_COLD_FRAC,
                                   relevance=relevance, models=models, seed=args.seed, budget=args.budget or None)
    except ValueError as exc:
        print(f"{exc}", file=sys.stderr)
        return 2
    if args.json:
        print(report.to_json())
    else:
        print(f"Cold-film evaluation of {source}" + (f" with film features from {args.items}" if args.items else "")
              + "\n")
        print(report.to_markdown())
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from lbx_orchestration.demo import materialize_everything

    return materialize_everything()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lbx", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("recs", help="print a user's recommendations from DuckDB")
    p.add_argument("username")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--source", choices=["letterboxd", "movielens"])
    p.add_argument("--db", help="DuckDB file (default LBX_DUCKDB_PATH or data/lbx.duckdb)")
    p.set_defaults(func=cmd_recs)

    p = sub.add_parser("import", help="import a Letterboxd data export (zip or folder)")
    p.add_argument("path")
    p.add_argument("--username")
    p.add_argument("--db")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("crawl", help="opt-in, polite crawl of Letterboxd RSS feeds or profile pages")
    p.add_argument("kind", choices=["rss", "profile"])
    p.add_argument("users", nargs="+")
    p.add_argument("--base-url", default="https://letterboxd.com")
    p.add_argument("--out", help="write the parsed items as JSON lines")
    p.add_argument("--delay", type=float, help="seconds between requests (at least 1)")
    p.set_defaults(func=cmd_crawl)

    p = sub.add_parser("tmdb", help="TMDb look-ups")
    tsub = p.add_subparsers(dest="tmdb_command", required=True)
    m = tsub.add_parser("movie", help="print one film's parsed metadata as JSON")
    m.add_argument("id", type=int)
    m.add_argument("--base-url")
    m.add_argument("--snapshot", action="store_true", help="read the bundled offline snapshot")
    m.set_defaults(func=cmd_tmdb)

    p = sub.add_parser("eval", help="run the evaluation protocol and print every model's metrics")
    p.add_argument("--ratings", help="a MovieLens-format ratings.csv (default: the warehouse)")
    p.add_argument("--split", choices=["temporal", "random", "cold-films"], default="temporal")
    p.add_argument("--items", help="cold-films: film features from a MovieLens movies.csv (genres, year)")
    p.add_argument("--test-frac", type=float)
    p.add_argument("--relevance", default="3.5", help="rating threshold, or 'all' (every held-out film)")
    p.add_argument("--models", help="comma-separated subset of the models")
    p.add_argument("--budget", type=int, default=0, help="configurations tried per model (0 = whole grid)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--json", action="store_true")
    p.add_argument("--db")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("demo", help="materialize the whole graph on the bundled data")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
