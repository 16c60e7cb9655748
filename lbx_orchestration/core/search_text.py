"""Words of a film's text or a query: accents folded, case and punctuation gone."""

from __future__ import annotations

import re
import unicodedata

_TOKEN = re.compile(r"[a-z0-9]+")


def tokenize(text: str | None) -> list[str]:
    if not text:
        return []
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return _TOKEN.findall(plain)


_WORD = re.compile(r"\w+")


def name_words(text: str | None) -> list[str]:
    """Like ``tokenize``, but a word in any script stays (헤어질 결심, 千と千尋の神隠し)."""
    if not text:
        return []
    folded = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return [w.replace("_", "") for w in _WORD.findall(folded.lower()) if w.strip("_")]
