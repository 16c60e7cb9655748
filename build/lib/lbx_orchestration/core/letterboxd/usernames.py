"""Letterboxd usernames: letters, digits and underscores only."""

from __future__ import annotations

import re

from lbx_orchestration.core.letterboxd.errors import InvalidUsername

USERNAME_RULE = "letters, digits and underscores only"
_USERNAME = re.compile(r"[A-Za-z0-9_]+")
_SHOWN_CHARS = 40


def _shown(value: object) -> str:
    if isinstance(value, str) and len(value) > _SHOWN_CHARS:
        return repr(value[:_SHOWN_CHARS]) + "..."
    return repr(value)


def validate_username(name: str) -> str:
    """Return `name` unchanged, or raise InvalidUsername naming the value and the rule."""
    if not isinstance(name, str) or _USERNAME.fullmatch(name) is None:
        raise InvalidUsername(
            f"invalid Letterboxd username {_shown(name)}: a username has {USERNAME_RULE}"
        )
    return name
