"""Warehouse tables the web service reads.

The Dagster modules that own some of these names import Dagster, which this package must not,
so the names are repeated here next to the Dagster-free constants they sit beside.
"""

from lbx_orchestration.core.importer import EXPORT_IMPORTS, RESOLUTION, REVIEWS
from lbx_orchestration.models.data import INTERACTIONS

RECOMMENDATIONS = "serving.user_recommendations"  # serving/assets.py
MODEL_METRICS = "serving.model_metrics"  # serving/assets.py
CATALOG = "metadata.film_catalog"  # metadata/assets.py
TMDB_MOVIES = "metadata.tmdb_movies"  # metadata/assets.py
TMDB_RAW = "metadata.tmdb_raw"  # metadata/assets.py

__all__ = [
    "CATALOG",
    "EXPORT_IMPORTS",
    "INTERACTIONS",
    "MODEL_METRICS",
    "RECOMMENDATIONS",
    "RESOLUTION",
    "REVIEWS",
    "TMDB_MOVIES",
    "TMDB_RAW",
]
