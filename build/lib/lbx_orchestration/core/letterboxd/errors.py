"""Errors raised while reading a Letterboxd data export."""

from __future__ import annotations


class ExportError(ValueError):
    """The export cannot be imported; the message names the cause, the file and the line."""


class InvalidUsername(ExportError):
    """A Letterboxd username that breaks the letters/digits/underscores rule."""
