"""Film search benchmark: queries made from the warehouse's own films, MRR and recall@10 per
query kind, for each dense retriever (none, LSA, WordLlama, both) under the served rules, and
for each dense retriever alone. Results in benchmarks/results/search.json; docs/search.md.

    .venv/bin/python benchmarks/search_bench.py [--db data/lbx.duckdb]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lbx_orchestration.core.film_search import FilmSearch  # noqa: E402
from lbx_orchestration.core.search_rules import title_key  # noqa: E402
from lbx_orchestration.core.search_text import tokenize  # noqa: E402
from lbx_orchestration.web.data import load_serving_data  # noqa: E402
from lbx_orchestration.web.snapshot import export_serving_tables  # noqa: E402

SEED = 42
LIMIT = 20
STOP = set(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "his",
        "her",
        "their",
        "its",
        "is",
        "are",
        "was",
        "were",
        "be",
        "as",
        "who",
        "that",
    ]
)
STOP |= set(
    [
        "this",
        "he",
        "she",
        "they",
        "it",
        "after",
        "when",
        "into",
        "one",
        "two",
        "new",
        "but",
        "has",
        "have",
        "not",
        "out",
        "up",
        "him",
        "them",
        "while",
        "than",
    ]
)
LANGUAGE_QUERIES = [
    ("korean thriller", "ko", "Thriller"),
    ("korean drama", "ko", "Drama"),
    ("japanese animation", "ja", "Animation"),
    ("japanese drama", "ja", "Drama"),
    ("un film français", "fr", None),
    ("french comedy", "fr", "Comedy"),
    ("french drama", "fr", "Drama"),
    ("spanish drama", "es", "Drama"),
    ("chinese action", "zh", "Action"),
    ("german drama", "de", "Drama"),
]


def load_films(db: Path) -> pl.DataFrame:
    """The films exactly as `lbx serve` indexes them: the snapshot side file, then ServingData."""
    with tempfile.TemporaryDirectory() as tmp:
        side = Path(tmp) / "serving.duckdb"
        export_serving_tables(db, side)
        return load_serving_data(side, Path(tmp) / "lists").films


def misspell(word: str, rng: random.Random) -> str:
    """One edit inside the word (never its first letter): drop, swap, double or replace a letter."""
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(["drop", "swap", "double", "replace"])
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    return word[:i] + rng.choice("aeiounrst".replace(word[i], "")) + word[i + 1 :]


def make_queries(films: pl.DataFrame) -> list[dict]:
    rng = random.Random(SEED)
    rows = [r for r in films.iter_rows(named=True) if r["title"]]
    keys = defaultdict(list)
    for r in rows:
        keys[title_key(r["title"])].append(r["tmdb_id"])
    known = sorted(
        (r for r in rows if r["overview"] and len(keys[title_key(r["title"])]) == 1),
        key=lambda r: -(r["vote_count"] or 0),
    )[:600]
    queries: list[dict] = []

    def add(kind: str, q: str, relevant: set[int]) -> None:
        queries.append({"kind": kind, "query": q, "relevant": sorted(relevant)})

    for r in rng.sample(known, 30):
        add("exact title", r["title"], {r["tmdb_id"]})
    long_words = [r for r in known if any(len(w) >= 5 for w in r["title"].split())]
    for r in rng.sample(long_words, 30):
        words = r["title"].split()
        j = rng.choice([k for k, w in enumerate(words) if len(w) >= 5])
        words[j] = misspell(words[j], rng)
        add("misspelling", " ".join(words), {r["tmdb_id"]})
    foreign = [r for r in rows if r["original_title"] and title_key(r["original_title"]) != title_key(r["title"])]
    for r in rng.sample(foreign, min(25, len(foreign))):
        add("original title", r["original_title"], {r["tmdb_id"]})
    for column, kind in (("directors", "director"), ("cast_top", "cast")):
        people = defaultdict(set)
        for r in rows:
            for p in r[column] or []:
                people[p].add(r["tmdb_id"])
        # people of the well-known films, with two films or more
        candidates = sorted({p for r in known[:300] for p in (r[column] or [])[:3] if len(people[p]) >= 2})
        for p in rng.sample(candidates, 20):
            add(kind, p, people[p])
    with_keywords = [r for r in known if len(r["keywords"] or []) >= 4]
    for r in rng.sample(with_keywords, 20):
        add("plot (keywords)", " ".join(rng.sample(list(r["keywords"]), 3)), {r["tmdb_id"]})
    for r in rng.sample(known, 20):
        title_words = set(tokenize(r["title"]))
        words = [w for w in tokenize(r["overview"]) if w not in STOP and w not in title_words and len(w) > 3]
        words = list(dict.fromkeys(words))
        if len(words) >= 6:
            add("plot (overview words)", " ".join(rng.sample(words, 6)), {r["tmdb_id"]})
    for q, lang, genre in LANGUAGE_QUERIES:
        relevant = {
            r["tmdb_id"]
            for r in rows
            if r["original_language"] == lang and (genre is None or genre in (r["genres"] or []))
        }
        if relevant:
            add("language intent", q, relevant)
    return queries


def evaluate(ranked: list[int], relevant: set[int]) -> tuple[float, float]:
    rr = next((1.0 / (i + 1) for i, t in enumerate(ranked) if t in relevant), 0.0)
    recall = len(set(ranked[:10]) & relevant) / min(len(relevant), 10)
    return rr, recall


def run(search_fn, queries: list[dict]) -> dict:
    by_kind: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    for q in queries:
        ranked = search_fn(q["query"])
        rr, recall = evaluate(ranked, set(q["relevant"]))
        by_kind[q["kind"]].append((rr, recall, len(ranked)))
    out = {}
    for kind, values in [*by_kind.items(), ("all", [v for vs in by_kind.values() for v in vs])]:
        arr = np.array(values)
        out[kind] = {
            "queries": len(values),
            "mrr": round(float(arr[:, 0].mean()), 4),
            "recall@10": round(float(arr[:, 1].mean()), 4),
            "mean_hits": round(float(arr[:, 2].mean()), 2),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", type=Path, default=ROOT / "data/lbx.duckdb")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/search.json")
    args = parser.parse_args()
    films = load_films(args.db)
    ids = films["tmdb_id"].to_list()
    queries = make_queries(films)
    print(f"{films.height} films, {len(queries)} queries")
    results: dict[str, dict] = {}
    start = time.perf_counter()
    index = FilmSearch(films, dense=("lsa", "wordllama"))
    build_seconds = round(time.perf_counter() - start, 2)
    for name, dense in (("rules, no dense", ()), ("rules + LSA", ("lsa",)), ("rules + WordLlama", ("wordllama",))):
        index.dense = dense
        results[name] = run(lambda q: [ids[h.index] for h in index.search(q, LIMIT)], queries)
    index.dense = ("lsa", "wordllama")
    t0 = time.perf_counter()
    results["rules + LSA + WordLlama"] = run(lambda q: [ids[h.index] for h in index.search(q, LIMIT)], queries)
    per_query_ms = round(1000 * (time.perf_counter() - t0) / len(queries), 1)

    def dense_alone(name: str):
        def fn(q: str) -> list[int]:
            scores = index.lsa.scores(tokenize(q)) if name == "lsa" else index.wordllama.scores(q)
            return [] if scores is None else [ids[i] for i in np.argsort(-scores, kind="stable")[:LIMIT]]

        return fn

    results["LSA alone"] = run(dense_alone("lsa"), queries)
    results["WordLlama alone"] = run(dense_alone("wordllama"), queries)
    report = {
        "films": films.height,
        "queries": len(queries),
        "seed": SEED,
        "limit": LIMIT,
        "index_build_seconds_lsa_and_wordllama": build_seconds,
        "ms_per_query_both": per_query_ms,
        "results": results,
        "examples": queries[::12],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    for name, by_kind in results.items():
        print(f"\n{name}")
        for kind, m in by_kind.items():
            print(
                f"  {kind:24s} n={m['queries']:3d} MRR {m['mrr']:.3f} R@10 {m['recall@10']:.3f} hits {m['mean_hits']}"
            )


if __name__ == "__main__":
    main()
