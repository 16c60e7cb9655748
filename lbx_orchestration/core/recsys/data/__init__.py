"""Interactions and splits, training data read from the warehouse, film feature spaces."""
