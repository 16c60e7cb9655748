"""Title normalisation shared by every film-resolution path."""

from __future__ import annotations

import re
import unicodedata

_ARTICLE_SUFFIX = re.compile(
    r"^(?P<body>.+?),\s*(?P<article>the|a|an|les|le|la|l'|il|el|los|las|der|die|das|den)$",
    re.IGNORECASE,
)
_NON_WORD = re.compile(r"[^\w\s]")
_SPACES = re.compile(r"\s+")


def fix_mojibake(text: str) -> str:
    """Undo UTF-8 bytes that were decoded as cp1252 once (``Melvilleâ€™s``)."""
    if not any(marker in text for marker in ("â€", "Ã", "Â")):
        return text
    try:
        return text.encode("cp1252").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def move_article(title: str) -> str:
    """``Shining, The`` -> ``The Shining`` (MovieLens writes articles last)."""
    match = _ARTICLE_SUFFIX.match(title.strip())
    if not match:
        return title.strip()
    article = match.group("article")
    sep = "" if article.endswith("'") else " "
    return f"{article}{sep}{match.group('body')}"


def normalize_title(title: str) -> str:
    """A key for matching titles across sources: case, accents, punctuation and articles folded."""
    text = move_article(fix_mojibake(title or ""))
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.lower().replace("&", " and ")
    text = _NON_WORD.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


_ML_TITLE = re.compile(r"^(?P<title>.*?)\s*(?:\((?P<aka>[^()]*)\))?\s*\((?P<year>\d{4})(?:[-–]\d{0,4})?\)\s*$")


_AKA = re.compile(r"\s*\((?:a\.k\.a\.|aka)\s[^()]*\)", re.IGNORECASE)


def split_movielens_title(raw: str) -> tuple[str, str | None, int | None]:
    """``City of Lost Children, The (Cité des enfants perdus, La) (1995)`` -> title, aka, year."""
    match = _ML_TITLE.match(raw.strip())
    if not match:
        return move_article(raw.strip()), None, None
    aka = match.group("aka")
    title = _AKA.sub("", match.group("title")).strip()
    return (
        move_article(title),
        move_article(aka) if aka else None,
        int(match.group("year")),
    )
