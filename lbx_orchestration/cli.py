"""`lbx`: recommendations, imports, crawls, TMDb look-ups and evaluation from the terminal."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import duckdb

from lbx_orchestration.core.recsys.data.overview_modes import DEFAULT_OVERVIEW, OVERVIEW_MODES
from lbx_orchestration.core.settings import RELEVANCE, SEED, duckdb_path
from lbx_orchestration.core.tables import NEW_FOR_YOU, RECOMMENDATIONS
from lbx_orchestration.core.warehouse import WarehouseError, connect, read_frame, table_exists
from lbx_orchestration.core.warehouse import exists as warehouse_exists

DEMO_FIRST = "run `make demo` first (or set LBX_DUCKDB_PATH)"
IMPORT_FIRST = "import an export first (`lbx import`)"


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


def _recommendation_rows(con, username: str, source: str | None, limit: int, table: str = RECOMMENDATIONS):
    """(rows, the username as stored, other sources with the same name). Names match without
    regard to case; a Letterboxd member wins over a MovieLens rater of the same name.
    ``table``: the main list, or serving.new_for_you (its rows carry a release date)."""
    when = "release_date" if table == NEW_FOR_YOU else "year"
    where, params = "lower(username) = lower(?)", [username]
    if source:
        where += " and source = ?"
        params.append(source)
    found = con.execute(
        f"select distinct source, username from {table} where {where} "
        "order by source = 'letterboxd' desc, source, username",
        params,
    ).fetchall()
    if not found:
        return None, username, []
    chosen_source, stored = found[0]
    cursor = con.execute(
        f"select rank, title, {when}, round(score, 3) as score, reason, source, model from {table} "
        "where source = ? and username = ? order by rank limit ?",
        [chosen_source, stored, limit],
    )
    names = [d[0] for d in cursor.description]
    recs = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]  # no polars: a fast cold start
    return recs, stored, [s for s, _ in found[1:] if s != chosen_source]


def _warehouse(args: argparse.Namespace) -> Path:
    return Path(args.db) if args.db else duckdb_path()


def _existing_warehouse(args: argparse.Namespace, hint: str) -> Path | None:
    """The warehouse a command reads, or None once the member is told how to create it."""
    db = _warehouse(args)
    if not warehouse_exists(db):
        print(f"no warehouse at {db}: {hint}", file=sys.stderr)
        return None
    return db


def cmd_recs(args: argparse.Namespace) -> int:
    db = _existing_warehouse(args, DEMO_FIRST)
    if db is None:
        return 1
    try:
        with connect(db, read_only=True, wait_seconds=args.wait, on_wait=_waiting) as con:
            table, asset = (NEW_FOR_YOU, "new_for_you") if args.new else (RECOMMENDATIONS, "user_recommendations")
            if not table_exists(con, table):
                print(f"{db} has no {table} yet: run `make demo` (or materialize {asset})", file=sys.stderr)
                return 1
            recs, stored, others = _recommendation_rows(con, args.username, args.source, args.limit, table)
    except WarehouseError as exc:
        print(f"lbx: {exc}", file=sys.stderr)
        return 1
    if not recs:
        print(
            f"unknown user {args.username!r}: nobody of that name has recommendations in {db}. "
            "Import their Letterboxd export first: `lbx import PATH` gives them a list at once.",
            file=sys.stderr,
        )
        return 1
    first = recs[0]
    what = "New films" if args.new else "Recommendations"
    print(f"{what} for {stored} ({first['source']}, model {first['model']}):\n")
    columns = ["rank", "title", "release_date" if args.new else "year", "score", "reason"]
    print(_table(recs, columns, {"title": 40, "reason": 90}))
    for other in others:
        print(f"\n(a {other} user is also named {stored!r}: `lbx recs {stored} --source {other}`)")
    return 0


def _report_to_dagster(done, path: str) -> None:
    """Let the Dagster UI (`make ui`) show the import too; an import never fails for this."""
    try:
        from lbx_orchestration.ingest.member_events import report_to_dagster

        report_to_dagster(done, path)
    except Exception as exc:
        print(f"lbx: imported, but the Dagster instance was not told ({type(exc).__name__}: {exc})", file=sys.stderr)


def cmd_import(args: argparse.Namespace) -> int:
    import polars as pl

    from lbx_orchestration.core.letterboxd.export import ExportError
    from lbx_orchestration.core.members import onboard
    from lbx_orchestration.core.tmdb.base import TmdbError
    from lbx_orchestration.core.tmdb.sources import tmdb_source_from_env

    db = _warehouse(args)
    try:
        done = onboard(
            Path(args.path),
            username=args.username,
            db=db,
            tmdb_source=tmdb_source_from_env(),
            wait_seconds=args.wait,
            on_wait=_waiting,
        )
    except (ExportError, FileNotFoundError) as exc:
        print(f"import refused: {exc}", file=sys.stderr)
        return 1
    except (WarehouseError, TmdbError) as exc:
        print(f"import failed, nothing was changed: {exc}", file=sys.stderr)
        return 1
    report = done.report
    _report_to_dagster(done, args.path)
    counts = report.counts
    print(f"{report.username}: {report.status} (export {report.content_sha256[:12]}) in {done.seconds:.1f} s")
    print(
        f"  rated {counts.get('rated', 0)}, watched {counts.get('watched', 0)}, "
        f"on the watchlist {counts.get('watchlist', 0)}, diary entries {counts.get('diary', 0)}"
    )
    print(_match_lines(report))
    if done.recommendations.height == 0:
        print(f"  no recommendations yet: {done.note}", file=sys.stderr)
        return 2 if "cannot be loaded" in done.note else 0
    print(f"\nTop 10 of {done.recommendations.height} for {report.username} (model {done.model}):\n")
    top = done.recommendations.head(10).with_columns(pl.col("score").round(3))
    print(_table(top.to_dicts(), ["rank", "title", "year", "reason"], {"title": 40, "reason": 90}))
    print(f"\nThe whole list: lbx recs {report.username} --limit 50")
    new = done.new_films
    if new is not None and new.height:
        print(f"\nNew for you (recent releases nobody in the community has rated enough yet), top 5 of {new.height}:\n")
        print(_table(new.head(5).to_dicts(), ["rank", "title", "release_date", "reason"], {"title": 40, "reason": 90}))
        print(f"\nAll of them: lbx recs {report.username} --new")
    return 0


KIND_FILES = {
    "rating": "ratings.csv",
    "watched": "watched.csv",
    "diary": "diary.csv",
    "review": "reviews.csv",
    "like": "likes/films.csv",
    "watchlist": "watchlist.csv",
}


def _match_lines(report) -> str:
    """Rated and watched films matched to TMDb, then the same per export file."""
    lines = []
    for kind, label in (("rating", "rated films"), ("watched", "watched films")):
        matched, total, share = report.share(kind)
        lines.append(f"  {label} matched to TMDb: {matched} of {total} ({share:.0%})")
    per_file = [f"{KIND_FILES.get(k, k)} {m}/{n}" for k, (m, n) in report.by_kind.items()]
    if per_file:
        lines.append("  per file: " + ", ".join(per_file))
    if report.tv:
        per_tv = ", ".join(f"{KIND_FILES.get(k, k)} {n}" for k, n in report.tv_by_kind.items())
        lines.append(
            f"  TV entries (miniseries, episodes), counted apart from films and never matched to one: "
            f"{report.tv}" + (f" ({per_tv})" if per_tv else "")
        )
    unmatched = report.films - report.resolved
    if unmatched:
        lines.append(
            f"  {unmatched} film entries unmatched or refused: `lbx unmatched {report.username}` lists them, "
            f"`lbx match {report.username} TITLE YEAR TMDB_ID` fixes one"
        )
    return "\n".join(lines)


def cmd_crawl(args: argparse.Namespace) -> int:
    from lbx_orchestration.core.crawl.runner import CrawlBlocked, CrawlError, run_crawl
    from lbx_orchestration.core.crawl.settings import cli_download_delay

    try:
        overrides = {"download_delay": cli_download_delay(args.delay)} if args.delay is not None else {}
        if args.page_limit is not None:
            overrides["page_limit"] = args.page_limit
        result = run_crawl(
            args.kind,
            list(args.users),
            base_url=args.base_url,
            out=Path(args.out) if args.out else None,
            settings_override=overrides,
        )
    except CrawlBlocked as exc:
        print(f"crawl stopped: {exc}", file=sys.stderr)
        return 3
    except (CrawlError, ValueError) as exc:
        print(f"crawl failed: {exc}", file=sys.stderr)
        return 1
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    stats = result.stats
    print(
        f"{len(result.items)} items from {stats.get('pages', 0)} pages "
        f"({stats.get('requests', 0)} requests, 429s {stats.get('status_429', 0)}, "
        f"empty pages {stats.get('empty_pages', 0)})" + (f"; written to {args.out}" if args.out else "")
    )
    return 0


def cmd_tmdb(args: argparse.Namespace) -> int:
    from lbx_orchestration.core.tmdb.base import TmdbAuthError, TmdbError
    from lbx_orchestration.core.tmdb.flatten import flatten_checked

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
    row, notes = flatten_checked(details)
    for note in notes:
        print(f"lbx: TMDb movie {args.id}: {note}", file=sys.stderr)
    print(json.dumps(row, indent=2, ensure_ascii=False))
    return 0


def _eval_members(args: argparse.Namespace) -> int:
    import tempfile

    from lbx_orchestration.core.member_eval import run_member_protocol, summary_markdown

    db = _existing_warehouse(args, DEMO_FIRST)
    if db is None:
        return 1
    with tempfile.TemporaryDirectory(prefix="lbx-members-") as work:
        report = run_member_protocol(db, Path(work), overview=args.overview)
    if args.json:
        print(json.dumps({"cutoff": report.cutoff, "rows": report.rows(), "notes": report.notes}, indent=2))
    else:
        print(f"Member protocol on {db} (a copy; the warehouse is only read)\n")
        print(summary_markdown(report))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from lbx_orchestration.core.recsys.evaluation.protocol import DEFAULT_MODELS, read_movielens_ratings, run_protocol

    if args.split == "cold-films":
        return _eval_cold_films(args)
    if args.split == "members":
        return _eval_members(args)
    if args.items:
        print("--items is only used by --split cold-films", file=sys.stderr)
        return 2

    features = None
    if args.ratings:
        observations = read_movielens_ratings(args.ratings)
        source = args.ratings
    else:
        from lbx_orchestration.core.recsys.data.training_data import load_training_data

        db = _warehouse(args)
        try:
            observations, features = load_training_data(db)
        except FileNotFoundError as exc:
            print(f"{exc}, or pass --ratings", file=sys.stderr)
            return 1
        source = str(db)
    models = tuple(args.models.split(",")) if args.models else DEFAULT_MODELS
    relevance = None if args.relevance in ("none", "all") else float(args.relevance)
    report = run_protocol(
        observations,
        split=args.split,
        test_frac=args.test_frac,
        relevance=relevance,
        models=models,
        item_features=features,
        seed=args.seed,
        budget=args.budget or None,
    )
    if args.json:
        print(report.to_json())
    else:
        print(f"Evaluation of {source}\n")
        print(report.to_markdown())
    return 0


def _eval_cold_films(args: argparse.Namespace) -> int:
    from lbx_orchestration.core.recsys.evaluation.cold import COLD_MODELS, DEFAULT_COLD_FRAC, run_cold_protocol
    from lbx_orchestration.core.recsys.evaluation.protocol import read_movielens_ratings

    features, votes = None, {}
    if args.items and not args.ratings:
        print("--items gives MovieLens ids: pass the matching --ratings too", file=sys.stderr)
        return 2
    try:
        if args.items:
            from lbx_orchestration.core.recsys.data.movielens_items import (
                movielens_item_features,
                movielens_vote_counts,
            )
            from lbx_orchestration.core.tmdb.snapshot import TmdbSnapshot

            ids, matrix, _ = movielens_item_features(args.items)
            features = (ids, matrix)
            votes = movielens_vote_counts(args.items, TmdbSnapshot().records)
        if args.ratings:
            observations, source = read_movielens_ratings(args.ratings), args.ratings
        else:
            from lbx_orchestration.core.recsys.data.training_data import (
                load_content_movies,
                load_training_data,
                load_vote_counts,
            )
            from lbx_orchestration.core.recsys.models.content_training import content_features

            db = _warehouse(args)
            observations, _ = load_training_data(db)
            # the features the content model is fitted and served with
            features = features or content_features(load_content_movies(db), args.overview)[1]
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
        report = run_cold_protocol(
            observations,
            features,
            votes,
            test_frac=args.test_frac or DEFAULT_COLD_FRAC,
            relevance=relevance,
            models=models,
            seed=args.seed,
            budget=args.budget or None,
        )
    except ValueError as exc:
        print(f"{exc}", file=sys.stderr)
        return 2
    if args.json:
        print(report.to_json())
    else:
        print(
            f"Cold-film evaluation of {source}"
            + (f" with film features from {args.items}" if args.items else "")
            + "\n"
        )
        print(report.to_markdown())


def _progress_printer(label: str):
    last = [0.0, -1]

    def show(done: int, total: int | None) -> None:
        import time

        now = time.monotonic()
        pct = int(100 * done / total) if total else -1
        if now - last[0] < 0.5 and pct == last[1] and (total is None or done < total):
            return
        last[0], last[1] = now, pct
        size = f"{done / 1e6:,.1f} MB" + (f" of {total / 1e6:,.1f} MB ({pct}%)" if total else "")
        print(f"\rdownloading {label}: {size}", end="", file=sys.stderr, flush=True)

    return show


def cmd_fetch(args: argparse.Namespace) -> int:
    from lbx_orchestration.core.movielens.fetch import FetchError, fetch_movielens
    from lbx_orchestration.core.movielens.settings_file import write_setting
    from lbx_orchestration.core.settings import data_dir

    dest = Path(args.dest) if args.dest else data_dir() / "movielens"
    try:
        result = fetch_movielens(
            args.name, dest, base_url=args.base_url, progress=_progress_printer(f"{args.name}.zip")
        )
    except FetchError as exc:
        print(f"\nfetch failed: {exc}", file=sys.stderr)
        return 1
    print(file=sys.stderr)
    settings = write_setting("movielens_dir", str(result.directory.resolve()))
    resumed = f", resumed from byte {result.resumed_from:,}" if result.resumed_from else ""
    if result.attempts > 1:
        resumed += f", {result.attempts - 1} cut connection(s) resumed with HTTP Range requests"
    print(f"{args.name}: {result.zip_bytes / 1e6:,.1f} MB, MD5 {result.md5} verified{resumed}")
    print(f"unpacked to {result.directory}\n")
    print(
        "MovieLens usage license, from the data set's README (GroupLens' terms: read them before "
        "you use or share the data):\n"
    )
    print(result.license_text + "\n")
    print(f"lbx will use it: {settings} now says movielens_dir = {str(result.directory.resolve())!r};")
    print("the next materialization of movielens_ratings reads it (LBX_MOVIELENS_DIR, when set, still wins).")
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    from lbx_orchestration.sql_shell import SqlError, run, shell

    db = _existing_warehouse(args, DEMO_FIRST)
    if db is None:
        return 1
    try:
        if not args.query:
            return shell(db, sys.stdin, sys.stdout, sys.stderr, args.max_rows, sys.stdin.isatty(), wait=args.wait)
        run(db, args.query, sys.stdout, args.max_rows, csv=args.csv, wait=args.wait, on_wait=_waiting)
    except SqlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `lbx sql ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from lbx_orchestration.demo import materialize_everything

    return materialize_everything()


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from lbx_orchestration.web.app import WebSettings, create_app

    db = _existing_warehouse(args, DEMO_FIRST)
    if db is None:
        return 1
    settings = WebSettings(
        db=db,
        state_dir=Path(args.state_dir) if args.state_dir else None,
        imports_burst=args.imports_burst,
        imports_per_minute=args.imports_per_minute,
    )
    print(f"lbx serving {db} on http://{args.host}:{args.port}/ (the API's OpenAPI schema at /openapi.json)")
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level)
    return 0


def _add_serve_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="the members' web page and REST API (FastAPI) on loopback")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--db", help="DuckDB file (default LBX_DUCKDB_PATH or data/lbx.duckdb)")
    p.add_argument("--state-dir", help="where the read-only snapshot lives (default <warehouse dir>/web)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--imports-burst", type=float, default=3, help="uploads one client may start at once (default 3)")
    p.add_argument(
        "--imports-per-minute", type=float, default=2, help="how fast a client's upload allowance refills (default 2)"
    )
    p.set_defaults(func=cmd_serve)


def _unmatched_frame(con, username: str):
    """A member's films without a TMDb id (refused, not found) or with an ambiguous one."""
    import polars as pl

    from lbx_orchestration.core.catalog import RESOLUTION_SCHEMA
    from lbx_orchestration.core.tables import RESOLUTION, REVIEWS

    films = read_frame(
        con,
        f"select film_key, any_value(film_title) as film_title, any_value(film_year) as film_year, "
        f"max(rating) as rating, string_agg(distinct kind, ',' order by kind) as kinds, "
        f"max(tmdb_id) as source_id from {REVIEWS} where user_key = ? group by film_key",
        [f"letterboxd:{username.lower()}"],
    )
    if films.height == 0:
        return None
    if not table_exists(con, RESOLUTION):
        return films.filter(pl.col("source_id").is_null()).with_columns(
            [pl.lit(None, t).alias(c) for c, t in RESOLUTION_SCHEMA.items() if c not in films.columns]
        )
    res = read_frame(con, f"select * from {RESOLUTION}")
    res = res.select(
        [pl.col(c) if c in res.columns else pl.lit(None, t).alias(c) for c, t in RESOLUTION_SCHEMA.items()]
    ).drop("film_title", "film_year")
    frame = films.join(res, on="film_key", how="left").filter(
        pl.col("source_id").is_null() & (pl.col("tmdb_id").is_null() | pl.col("ambiguous").fill_null(False))
    )
    # a film appears under its boxd.it key and under title + year (diary rows): show it once
    return (
        frame.group_by("film_title", "film_year", maintain_order=True)
        .agg(
            pl.col("rating").max(),
            pl.col("kinds"),
            pl.all().exclude("film_title", "film_year", "rating", "kinds").first(),
        )
        .sort(["rating", "film_title"], descending=[True, False], nulls_last=True)
    )


def _status(row: dict) -> tuple[str, str]:
    """(status, best candidates) for one unmatched film."""
    if row["method"] is None:
        return "not resolved yet", ""
    if row["method"] == "refused":
        best = f"{row['candidate_title']} ({row['candidate_year'] or '?'}) #{row['candidate_id']}"
        other = f"; #{row['runner_up_id']}" if row["runner_up_id"] else ""
        return "refused", best + other
    if row["tmdb_id"] is not None:
        return "ambiguous", f"#{row['tmdb_id']} or #{row['runner_up_id']}"
    return {"search_no_candidates": "no candidate", "search_no_match": "no similar title", "no_title": "no title"}.get(
        row["method"], row["method"]
    ), ""


def cmd_member_key(args: argparse.Namespace) -> int:
    from lbx_orchestration.core.letterboxd.usernames import InvalidUsername, canonical_username
    from lbx_orchestration.core.ownership import issue_key, member_exists

    try:
        name = canonical_username(args.username)
    except InvalidUsername as exc:
        print(f"lbx: {exc}", file=sys.stderr)
        return 1
    db = _existing_warehouse(args, DEMO_FIRST)
    if db is None:
        return 1
    with connect(db) as con:
        if not member_exists(con, name):
            print(f"lbx: no member {name!r} in {db}: import their export first (`lbx import PATH`)", file=sys.stderr)
            return 1
        key = issue_key(con, name)
    print(f"member key for {name} (shown once; any earlier key stops working):\n\n  {key}\n")
    print('They enter it once in the page\'s upload form ("member key"); the page then remembers it.')
    return 0


def cmd_unmatched(args: argparse.Namespace) -> int:
    db = _existing_warehouse(args, IMPORT_FIRST)
    if db is None:
        return 1
    import polars as pl

    from lbx_orchestration.core.tables import REVIEWS

    with connect(db, read_only=True) as con:
        if not table_exists(con, REVIEWS):
            print(f"{db} has no imported films yet: run `lbx import`", file=sys.stderr)
            return 1
        frame = _unmatched_frame(con, args.username)
    if frame is None:
        print(f"unknown user {args.username!r}: nothing imported for them in {db}", file=sys.stderr)
        return 1
    is_tv = pl.col("media_type").fill_null("") == "tv"
    tv, frame = frame.filter(is_tv), frame.filter(~is_tv)
    rows = []
    for row in frame.iter_rows(named=True):
        status, best = _status(row)
        kinds = sorted({k for ks in row["kinds"] for k in ks.split(",")})
        rows.append(
            {
                "title": row["film_title"],
                "year": row["film_year"],
                "rating": row["rating"],
                "seen as": ",".join(kinds),
                "status": status,
                "best candidates": best,
                "confidence": round(row["confidence"], 2) if best else None,
                "reason": row["reason"] or "",
            }
        )
    print(f"{args.username}: {len(rows)} films unmatched, refused or ambiguous\n")
    if rows:
        print(
            _table(
                rows,
                ["title", "year", "rating", "seen as", "status", "best candidates", "confidence", "reason"],
                {"title": 40, "best candidates": 45, "reason": 70},
            )
        )
        print(f'\nfix one with: lbx match {args.username} "TITLE" YEAR TMDB_ID')
        print(UNMATCHED_MAY_BE_TV)
    if tv.height:
        print(f"\n{args.username}: {tv.height} TV entries (miniseries, episodes), counted apart from films\n")
        print(_table(_tv_rows(tv), ["title", "year", "rating", "seen as", "TMDb TV"], {"title": 40, "TMDb TV": 60}))
    return 0


UNMATCHED_MAY_BE_TV = (
    "\nSome of these may be TV series or episodes, which TMDb's film catalogue lacks: with live TMDb "
    "(TMDB_API_KEY) lbx looks them up as TV and lists them apart; the bundled snapshot holds films only."
)


def _tv_rows(tv) -> list[dict]:
    rows = []
    for row in tv.iter_rows(named=True):
        show = f"{row['candidate_title'] or '?'} ({row['candidate_year'] or '?'})" if row["candidate_title"] else ""
        where = f"#tv/{row['tmdb_tv_id']}" if row["tmdb_tv_id"] is not None else "(the source said TV)"
        rows.append(
            {
                "title": row["film_title"],
                "year": row["film_year"],
                "rating": row["rating"],
                "seen as": ",".join(sorted({k for ks in row["kinds"] for k in ks.split(",")})),
                "TMDb TV": f"{show} {where}".strip(),
            }
        )
    return rows


def cmd_match(args: argparse.Namespace) -> int:
    import polars as pl

    from lbx_orchestration.core.catalog import override_row, resolve_films, upgrade_resolution_table
    from lbx_orchestration.core.tables import OVERRIDES, RESOLUTION, REVIEWS, UNRESOLVED
    from lbx_orchestration.core.tmdb.base import TmdbError
    from lbx_orchestration.core.tmdb.normalize import match_key
    from lbx_orchestration.core.tmdb.records import display_title, release_year
    from lbx_orchestration.core.tmdb.sources import tmdb_source_from_env
    from lbx_orchestration.core.warehouse import replace_many

    db = _existing_warehouse(args, IMPORT_FIRST)
    if db is None:
        return 1
    key = match_key(args.title)
    if not key:
        print(f"not a title: {args.title!r}", file=sys.stderr)
        return 1
    with connect(db) as con:
        films = (
            read_frame(
                con,
                f"select film_key, any_value(film_title) as film_title, any_value(film_year) as film_year, "
                f"cast(null as bigint) as tmdb_id from {REVIEWS} where user_key = ? and film_year is not distinct "
                f"from ? and tmdb_id is null group by film_key",
                [f"letterboxd:{args.username.lower()}", args.year],
            )
            if table_exists(con, REVIEWS)
            else pl.DataFrame()
        )
        if films.height:
            films = films.filter(pl.col("film_title").map_elements(match_key, return_dtype=pl.Utf8) == key)
        if films.height == 0:
            print(
                f"{args.username} has no film {args.title!r} ({args.year}) without a TMDb id from its source: "
                f"`lbx unmatched {args.username}` lists the films to fix",
                file=sys.stderr,
            )
            return 1
        try:
            details = tmdb_source_from_env().movie_details(args.tmdb_id)
        except TmdbError as exc:
            print(f"TMDb error: {exc}", file=sys.stderr)
            return 1
        if details is None and not args.force:
            print(
                f"TMDb has no movie {args.tmdb_id} (offline: the bundled snapshot does not hold it; "
                "--force stores it anyway)",
                file=sys.stderr,
            )
            return 1
        override = override_row(args.username, args.title, args.year, args.tmdb_id)
        rows = resolve_films(films, source=None, overrides=override)  # every row is the override
        writes = {
            OVERRIDES: (override, {"title_key": [key], "film_year": [args.year]}),
            RESOLUTION: (rows, {"film_key": rows["film_key"].to_list()}),
        }
        if table_exists(con, UNRESOLVED):
            writes[UNRESOLVED] = (rows.select("film_key").clear(), {"film_key": rows["film_key"].to_list()})
        upgrade_resolution_table(con, RESOLUTION)
        replace_many(con, writes)
    print(
        f"{args.username}: {args.title!r} ({args.year}) is now TMDb {args.tmdb_id}, "
        + (f"{display_title(details)} ({release_year(details) or '?'})" if details else "unknown to TMDb here")
        + f", for {rows.height} film entries."
    )
    print(
        "  this wins over search on every later import and film_catalog run; `lbx import` the export "
        "again (or wait for the next refresh) to update the list"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lbx", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("recs", help="print a user's recommendations from DuckDB")
    p.add_argument("username")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--source", choices=["letterboxd", "movielens"])
    p.add_argument("--new", action="store_true", help="recent releases from the content model (serving.new_for_you)")
    p.add_argument("--db", help="DuckDB file (default LBX_DUCKDB_PATH or data/lbx.duckdb)")
    p.add_argument("--wait", type=float, default=30.0, help="seconds to wait while another process writes")
    p.set_defaults(func=cmd_recs)

    p = sub.add_parser(
        "import",
        help="import a Letterboxd data export (zip or folder) and print the "
        "member's recommendations from the served model",
    )
    p.add_argument("path")
    p.add_argument("--username", help="default: profile.csv, or the export's file name")
    p.add_argument("--db")
    p.add_argument("--wait", type=float, default=120.0, help="seconds to wait while another process writes")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("unmatched", help="list a member's films without a TMDb match, with the best candidates")
    p.add_argument("username")
    p.add_argument("--db")
    p.set_defaults(func=cmd_unmatched)

    p = sub.add_parser("member", help="the operator's tools for members")
    msub = p.add_subparsers(dest="member_command", required=True)
    m = msub.add_parser(
        "key", help="issue a member key (replacing any earlier one) so the member can upload on the web"
    )
    m.add_argument("username")
    m.add_argument("--db", help="DuckDB file (default LBX_DUCKDB_PATH or data/lbx.duckdb)")
    m.set_defaults(func=cmd_member_key)

    p = sub.add_parser("match", help="fix one film's TMDb match; wins over search from then on")
    p.add_argument("username")
    p.add_argument("title")
    p.add_argument("year", type=int)
    p.add_argument("tmdb_id", type=int)
    p.add_argument("--force", action="store_true", help="store an id the TMDb source does not know")
    p.add_argument("--db")
    p.set_defaults(func=cmd_match)

    p = sub.add_parser("crawl", help="opt-in, polite crawl of Letterboxd RSS feeds or profile pages")
    p.add_argument("kind", choices=["rss", "profile"])
    p.add_argument("users", nargs="+")
    p.add_argument("--base-url", default="https://letterboxd.com")
    p.add_argument("--out", help="write the parsed items as JSON lines")
    p.add_argument("--delay", type=float, help="seconds between requests (at least 1)")
    p.add_argument(
        "--page-limit",
        type=int,
        help="most pages one crawl reads before it stops with an error "
        "(default 10,000); a page that repeats an earlier one ends its listing anyway",
    )
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
    p.add_argument("--split", choices=["temporal", "random", "cold-films", "members"], default="temporal")
    p.add_argument("--items", help="cold-films: film features from a MovieLens movies.csv (genres, year)")
    p.add_argument(
        "--overview",
        choices=OVERVIEW_MODES,
        default=DEFAULT_OVERVIEW,
        help="cold-films and members: how the content features read a film's overview (default %(default)s)",
    )
    p.add_argument("--test-frac", type=float)
    p.add_argument("--relevance", default=str(RELEVANCE), help="rating threshold, or 'all' (every held-out film)")
    p.add_argument("--models", help="comma-separated subset of the models")
    p.add_argument("--budget", type=int, default=0, help="configurations tried per model (0 = whole grid)")
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--json", action="store_true")
    p.add_argument("--db")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("fetch", help="download a data set lbx can use")
    fsub = p.add_subparsers(dest="fetch_command", required=True)
    m = fsub.add_parser("movielens", help="download, verify and unpack a MovieLens data set from GroupLens")
    m.add_argument("name", choices=["ml-latest-small", "ml-25m", "ml-32m"])
    m.add_argument("--base-url", default="https://files.grouplens.org/datasets/movielens")
    m.add_argument("--dest", help="folder to unpack into (default data/movielens)")
    m.set_defaults(func=cmd_fetch)

    p = sub.add_parser("sql", help="read-only SQL on the warehouse: one query, or a shell without QUERY")
    p.add_argument("query", nargs="?", help="SQL to run (omit for a shell; statements can also come on stdin)")
    p.add_argument("--db", help="DuckDB file (default LBX_DUCKDB_PATH or data/lbx.duckdb)")
    p.add_argument("--max-rows", type=int, default=100, help="rows printed per result (default 100)")
    p.add_argument("--csv", action="store_true", help="print the result of QUERY as CSV")
    p.add_argument("--wait", type=float, default=30.0, help="seconds to wait while another process writes")
    p.set_defaults(func=cmd_sql)

    p = sub.add_parser("demo", help="materialize the whole graph on the bundled data")
    p.set_defaults(func=cmd_demo)

    _add_serve_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # `lbx recs NAME | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except WarehouseError as exc:
        print(f"lbx: {exc}", file=sys.stderr)
        return 1
    except duckdb.Error as exc:  # a file DuckDB opened but cannot read all of: never a traceback
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(
            f"lbx: the warehouse could not be read ({type(exc).__name__}: {first}); if it keeps failing, "
            "move it aside and rebuild it with `make demo`",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
