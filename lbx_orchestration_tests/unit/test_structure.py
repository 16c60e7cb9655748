"""The rules of docs/architecture.md, checked on the source: where the environment is read,
what the core may import, and where warehouse table names are spelled."""

import ast
import re
from pathlib import Path

from lbx_orchestration.core.settings import PACKAGE_DIR

CORE = PACKAGE_DIR / "core"
SETTINGS = CORE / "settings.py"
TABLES = CORE / "tables.py"
ENVIRON_ALLOWED: set[Path] = set()  # none: dbt gets the warehouse path through --vars
DAGSTER_LAYER = (
    "resources",
    "ingest",
    "metadata",
    "features",
    "models",
    "serving",
    "partitions",
    "runs",
    "definitions",
    "schedules",
    "cli",
    "demo",
    "web",
)
SCHEMAS = "raw|ingest|metadata|features|serving|tmdb"
# a quoted table name (not a file such as "serving.duckdb"), or one spelled inside SQL text
TABLE_LITERAL = re.compile(
    rf"""["']({SCHEMAS})\.(?!duckdb["'])[a-z_]+["']"""
    rf"""|\b(?:from|join|into|table|update)\s+({SCHEMAS})\.[a-z_]+""",
    re.IGNORECASE,
)


def modules(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "sample_data" not in p.parts)


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_only_the_settings_module_reads_the_environment() -> None:
    offenders = [
        str(p.relative_to(PACKAGE_DIR))
        for p in modules(PACKAGE_DIR)
        if p != SETTINGS and p not in ENVIRON_ALLOWED and re.search(r"os\.environ|os\.getenv|putenv", p.read_text())
    ]
    assert offenders == []


def test_the_core_imports_no_dagster_and_nothing_above_it() -> None:
    offenders = {}
    for path in modules(CORE):
        bad = sorted(
            name
            for name in imported(path)
            if (name.split(".")[0].startswith("dagster") and name.split(".")[0] != "dagster_pipes")
            or any(
                name == f"lbx_orchestration.{room}" or name.startswith(f"lbx_orchestration.{room}.")
                for room in DAGSTER_LAYER
            )
        )
        if bad:
            offenders[str(path.relative_to(PACKAGE_DIR))] = bad
    assert offenders == {}


def test_warehouse_tables_are_named_only_in_core_tables() -> None:
    offenders = {
        str(p.relative_to(PACKAGE_DIR)): TABLE_LITERAL.findall(p.read_text())
        for p in modules(PACKAGE_DIR)
        if p != TABLES and TABLE_LITERAL.search(p.read_text())
    }
    assert offenders == {}


def test_asset_groups_never_import_a_downstream_group() -> None:
    order = ["ingest", "metadata", "features", "models", "serving"]
    offenders = {}
    for i, group in enumerate(order):
        downstream = order[i + 1 :]
        for path in modules(PACKAGE_DIR / group):
            bad = sorted(
                name for name in imported(path) if any(name.startswith(f"lbx_orchestration.{d}") for d in downstream)
            )
            if bad:
                offenders[str(path.relative_to(PACKAGE_DIR))] = bad
    assert offenders == {}
