"""Metrics, the evaluation protocols (temporal, cold films, blend) and the gate."""
