"""Letterboxd usernames: the one rule every importer, crawler and CLI checks names against."""

from __future__ import annotations

import re

from lbx_orchestration.core.letterboxd.errors import InvalidUsername

MAX_USERNAME_LENGTH = 64
USERNAME_RULE = f"1 to {MAX_USERNAME_LENGTH} letters, digits and underscores only"
_USERNAME = re.compile(rf"[A-Za-z0-9_]{{1,{MAX_USERNAME_LENGTH}}}")
_SHOWN_CHARS = 40


def _shown(value: object) -> str:
    if isinstance(value, str) and len(value) > _SHOWN_CHARS:
        return repr(value[:_SHOWN_CHARS]) + "..."
    return repr(value)


def is_username(name: object) -> bool:
    return isinstance(name, str) and _USERNAME.fullmatch(name) is not None


def validate_username(name: str) -> str:
    """Return `name` unchanged, or raise InvalidUsername naming the value and the rule.

    Every name that reaches a URL or a warehouse row has passed here, so it never carries a
    slash, a dot or a space.
    """
    if not is_username(name):
        raise InvalidUsername(f"invalid Letterboxd username {_shown(name)}: a username has {USERNAME_RULE}")
    return name


def canonical_username(name: str) -> str:
    """The one spelling lbx stores a member under. Letterboxd names are case-insensitive (its URLs
    are lower case), so ``MelvinCarvalho`` and ``melvincarvalho`` are one member everywhere."""
    return validate_username(name).lower()
