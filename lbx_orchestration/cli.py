"""`lbx`: recommendations, imports, crawls, TMDb look-ups and evaluation from the terminal."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from lbx_orchestration.core.settings import RELEVANCE, SEED, duckdb_path
from lbx_orchestration.core.tables import RECOMMENDATIONS
from lbx_orchestration.core.warehouse import WarehouseError, connect, read_frame, table_exists


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


def _waiting(message: str) -> None:
    print(f"lbx: {message}", file=sys.stderr)


def _recommendation_rows(con, username: str, source: str | None, limit: int):
    """(rows, the username as stored, other sources with the same name). Names match without
    regard to case; a Letterboxd member wins over a MovieLens rater of the same name."""
    where, params = "lower(username) = lower(?)", [username]
    if source:
        where += " and source = ?"
        params.append(source)
    found = con.execute(
        f"select distinct source, username from {RECOMMENDATIONS} where {where} "
        "order by source = 'letterboxd' desc, source, username", params
    ).fetchall()
    if not found:
        return None, username, []
    chosen_source, stored = found[0]
    recs = read_frame(
        con,
        f"select rank, title, year, round(score, 3) as score, reason, source, model from {RECOMMENDATIONS} "
        "where source = ? and username = ? order by rank limit ?",
        [chosen_source, stored, limit],
    )
    return recs, stored, [s for s, _ in found[1:] if s != chosen_source]


def cmd_recs(args: argparse.Namespace) -> int:
    db = Path(args.db) if args.db else duckdb_path()
    if not db.exists():
        print(f"no warehouse at {db}: run `make demo` first (or set LBX_DUCKDB_PATH)", file=sys.stderr)
        return 1
    try:
        with connect(db, read_only=True, wait_seconds=args.wait, on_wait=_waiting) as con:
            if not table_exists(con, RECOMMENDATIONS):
                print(f"{db} has no {RECOMMENDATIONS} yet: run `make demo` (or materialize user_recommendations)",
                      file=sys.stderr)
                return 1
            recs, stored, others = _recommendation_rows(con, args.username, args.source, args.limit)
    except WarehouseError as exc:
        print(f"lbx: {exc}", file=sys.stderr)
        return 1
    if recs is None or recs.height == 0:
        print(f"unknown user {args.username!r}: nobody of that name has recommendations in {db}. "
              "Import their Letterboxd export first: `lbx import PATH` gives them a list at once.",
              file=sys.stderr)
        return 1
    first = recs.row(0, named=True)
    print(f"Recommendations for {stored} ({first['source']}, model {first['model']}):\n")
    print(_table(recs.to_dicts(), ["rank", "title", "year", "score", "reason"], {"title": 40, "reason": 90}))
    for other in others:
        print(f"\n(a {other} user is also named {stored!r}: `lbx recs {stored} --source {other}`)")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from lbx_orchestration.core.letterboxd.export import ExportError
    from lbx_orchestration.core.members import onboard
    from lbx_orchestration.core.tmdb.base import TmdbError
    from lbx_orchestration.core.tmdb.sources import tmdb_source_from_env

    db = Path(args.db) if args.db else duckdb_path()
    try:
        done = onboard(Path(args.path), username=args.username, db=db, tmdb_source=tmdb_source_from_env(),
                       wait_seconds=args.wait, on_wait=_waiting)
    except (ExportError, FileNotFoundError) as exc:
        print(f"import refused: {exc}", file=sys.stderr)
        return 1
    except (WarehouseError, TmdbError) as exc:
        print(f"import failed, nothing was changed: {exc}", file=sys.stderr)
        return 1
    report = done.report
    counts = report.counts
    print(f"{report.username}: {report.status} (export {report.content_sha256[:12]}) in {done.seconds:.1f} s")
    print(f"  rated {counts.get('rated', 0)}, watched {counts.get('watched', 0)}, "
          f"on the watchlist {counts.get('watchlist', 0)}, diary entries {counts.get('diary', 0)}")
    print(f"  films resolved to TMDb ids: {report.resolved} of {report.films} ({report.resolved_share:.0%})")
    if done.recommendations.height == 0:
        print(f"  no recommendations yet: {done.note}", file=sys.stderr)
        return 2 if "cannot be loaded" in done.note else 0
    print(f"\nTop 10 of {done.recommendations.height} for {report.username} (model {done.model}):\n")
    top = done.recommendations.head(10).with_columns(pl.col("score").round(3))
    print(_table(top.to_dicts(), ["rank", "title", "year", "reason"], {"title": 40, "reason": 90}))
    print(f"\nThe whole list: lbx recs {report.username} --limit 50")
    return 0


def cmd_crawl(args: argparse.Namespace) -> int:
    from lbx_orchestration.core.crawl.runner import CrawlBlocked, CrawlError, run_crawl
    from lbx_orchestration.core.crawl.settings import cli_download_delay

    try:
        overrides = {"download_delay": cli_download_delay(args.delay)} if args.delay is not None else {}
        if args.page_limit is not None:
            overrides["page_limit"] = args.page_limit
        result = run_crawl(args.kind, list(args.users), base_url=args.base_url,
                           out=Path(args.out) if args.out else None, settings_override=overrides)
    except CrawlBlocked as exc:
        print(f"crawl stopped: {exc}", file=sys.stderr)
        return 3
    except (CrawlError, ValueError) as exc:
        print(f"crawl failed: {exc}", file=sys.stderr)
        return 1
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
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

    features = None
    if args.ratings:
        observations = read_movielens_ratings(args.ratings)
        source = args.ratings
    else:
        from lbx_orchestration.core.recsys.training_data import load_training_data

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
    p.add_argument("--wait", type=float, default=30.0, help="seconds to wait while another process writes")
    p.set_defaults(func=cmd_recs)

    p = sub.add_parser("import", help="import a Letterboxd data export (zip or folder) and print the "
                                      "member's recommendations from the served model")
    p.add_argument("path")
    p.add_argument("--username", help="default: profile.csv, or the export's file name")
    p.add_argument("--db")
    p.add_argument("--wait", type=float, default=120.0, help="seconds to wait while another process writes")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("crawl", help="opt-in, polite crawl of Letterboxd RSS feeds or profile pages")
    p.add_argument("kind", choices=["rss", "profile"])
    p.add_argument("users", nargs="+")
    p.add_argument("--base-url", default="https://letterboxd.com")
    p.add_argument("--out", help="write the parsed items as JSON lines")
    p.add_argument("--delay", type=float, help="seconds between requests (at least 1)")
    p.add_argument("--page-limit", type=int, help="most pages one crawl reads before it stops with an error "
                   "(default 10,000); a page that repeats an earlier one ends its listing anyway")
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
    p.add_argument("--split", choices=["temporal", "random"], default="temporal")
    p.add_argument("--test-frac", type=float)
    p.add_argument("--relevance", default=str(RELEVANCE), help="rating threshold, or 'all' (every held-out film)")
    p.add_argument("--models", help="comma-separated subset of the models")
    p.add_argument("--budget", type=int, default=0, help="configurations tried per model (0 = whole grid)")
    p.add_argument("--seed", type=int, default=SEED)
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
