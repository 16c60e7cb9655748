"""The members' side: a FastAPI app and a static page over the recommendations (no Dagster here)."""
