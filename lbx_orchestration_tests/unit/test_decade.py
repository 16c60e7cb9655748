"""The decade label is computed in dbt (stg_movies) and in Python (serving): both must agree."""

import re

import duckdb
import polars as pl

from lbx_orchestration.core.recsys.serving.recommend import decade
from lbx_orchestration.core.settings import DBT_PROJECT_DIR

YEARS = [None, 1895, 1949, 1950, 1959, 1999, 2000, 2029, 2030, 2031, 2045]
EXPECTED = ["unknown", "pre_1950", "pre_1950", "1950s", "1950s", "1990s", "2000s", "2020s", "2030s", "2030s", "2040s"]


def test_python_decade_is_uncapped() -> None:
    frame = pl.DataFrame({"year": YEARS}, schema={"year": pl.Int32})
    assert frame.select(decade(pl.col("year")).alias("decade"))["decade"].to_list() == EXPECTED


def test_dbt_decade_matches_python() -> None:
    sql = (DBT_PROJECT_DIR / "models" / "staging" / "stg_movies.sql").read_text()
    case = re.search(r"(case\s.*?\bend)\s+as\s+decade", sql, re.DOTALL)
    assert case, "stg_movies.sql no longer computes the decade with a case expression"
    con = duckdb.connect()
    rows = con.execute(
        f"select {case.group(1)} from unnest(?::integer[]) with ordinality as t(year, i) order by i", [YEARS]
    ).fetchall()
    assert [r[0] for r in rows] == EXPECTED
