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


# -- matching keys ---------------------------------------------------------------------------
# ``normalize_title`` names films in film keys and must stay stable; ``match_key`` is the
# looser key used only to compare titles, so it can learn new variants without renaming keys.

LEADING_ARTICLES = frozenset({"the", "a", "an", "les", "la", "le", "l", "el", "der", "die", "das", "il"})
#: both spellings of an abbreviation map to one token ("Sunset Blvd." = "Sunset Boulevard")
ABBREVIATIONS = {
    "boulevard": "blvd",
    "saint": "st",
    "street": "st",
    "doctor": "dr",
    "mister": "mr",
    "missus": "mrs",
    "versus": "vs",
    "mount": "mt",
    "junior": "jr",
    "senior": "sr",
    "avenue": "ave",
    "volume": "vol",
    "ft": "feat",
    "featuring": "feat",
    "pt": "part",
}
#: British -> American spellings ("Three Colours" = "Three Colors"); plurals follow
BRITISH_SPELLINGS = {
    "colour": "color",
    "honour": "honor",
    "favourite": "favorite",
    "theatre": "theater",
    "centre": "center",
    "grey": "gray",
    "neighbour": "neighbor",
    "labour": "labor",
    "harbour": "harbor",
    "armour": "armor",
    "humour": "humor",
    "rumour": "rumor",
    "behaviour": "behavior",
    "defence": "defense",
    "offence": "offense",
    "licence": "license",
    "catalogue": "catalog",
    "programme": "program",
    "travelling": "traveling",
    "traveller": "traveler",
    "jewellery": "jewelry",
    "odour": "odor",
    "valour": "valor",
    "splendour": "splendor",
    "vapour": "vapor",
    "saviour": "savior",
    "parlour": "parlor",
    "rigour": "rigor",
    "clamour": "clamor",
    "endeavour": "endeavor",
    "fibre": "fiber",
    "metre": "meter",
    "litre": "liter",
    "spectre": "specter",
    "sabre": "saber",
    "organise": "organize",
    "realise": "realize",
    "apologise": "apologize",
    "recognise": "recognize",
    "civilisation": "civilization",
    "pyjamas": "pajamas",
    "sceptic": "skeptic",
    "aluminium": "aluminum",
    "cheque": "check",
    "tyre": "tire",
    "manoeuvre": "maneuver",
    "mould": "mold",
    "plough": "plow",
    "moustache": "mustache",
    "ageing": "aging",
    "judgement": "judgment",
    "whisky": "whiskey",
    "mum": "mom",
}
_ROMAN = re.compile(r"^(x{0,3})(ix|iv|v?i{0,3})$")
_ROMAN_VALUES = {"i": 1, "v": 5, "x": 10}
_NUMBERED = frozenset({"part", "chapter", "episode", "vol", "book"})
_ELISION = re.compile(r"\b(l|d|j|qu|n|s|m|c)['’`ʼ]", re.IGNORECASE)
_APOSTROPHES = re.compile(r"['’`ʼ]")
_SUBTITLE = re.compile(r"\s*(?::|\s[-–—]\s)\s*")
# an alternative title: "Birdman or (The Unexpected Virtue of Ignorance)", "Dr. Strangelove or: How I
# Learned ...", "Nausicaä (of the Valley of the Wind)"
_ALTERNATIVE = re.compile(r"\s+or\s*[:(,]\s*|\s*\(\s*(?=[^)]*[^\d\s)])", re.IGNORECASE)
_AKA_PREFIX = re.compile(r"^\s*(?:a\.k\.a\.|aka)\s+", re.IGNORECASE)


def _roman_value(token: str) -> int | None:
    if not token or not _ROMAN.match(token):
        return None
    total = prev = 0
    for ch in reversed(token):
        value = _ROMAN_VALUES[ch]
        total += -value if value < prev else value
        prev = max(prev, value)
    return total


def _canonical_token(token: str, previous: str | None, last: bool) -> str:
    token = ABBREVIATIONS.get(token, token)
    if token in BRITISH_SPELLINGS:
        return BRITISH_SPELLINGS[token]
    if token.endswith("s") and token[:-1] in BRITISH_SPELLINGS:
        return BRITISH_SPELLINGS[token[:-1]] + "s"
    value = _roman_value(token)
    # "I" and single letters are words more often than numerals: only "Part I", "Rocky V"
    numeral = len(token) >= 2 or previous in _NUMBERED or (last and previous is not None and token != "i")
    return str(value) if value is not None and numeral else token


def match_key(title: str | None) -> str:
    """A key under which spelling variants of one title meet: case, accents, punctuation,
    apostrophes, "&"/"and", a leading article, roman numerals, common abbreviations and
    British spellings are folded. ``match_key("The Three Colours: Red") == "three colors red"``."""
    text = move_article(_AKA_PREFIX.sub("", fix_mojibake(title or "")))
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.lower()
    text = _APOSTROPHES.sub("", _ELISION.sub(r"\1 ", text)).replace("&", " and ")
    tokens = _NON_WORD.sub(" ", text).replace("_", " ").split()
    out: list[str] = []
    for i, token in enumerate(tokens):
        out.append(_canonical_token(token, tokens[i - 1] if i else None, i == len(tokens) - 1))
    if len(out) > 1 and out[0] in LEADING_ARTICLES:
        out = out[1:]
    return " ".join(out)


def partial_keys(title: str | None) -> set[str]:
    """Match keys of the main title and of a subtitle of two words or more
    (``"Laputa: Castle in the Sky"`` -> ``{"laputa", "castle in the sky"}``); empty when the
    title has no subtitle. A match on
    these alone is weaker than a full match and is only trusted with the same year."""
    text = fix_mojibake(title or "").strip()
    parts = _ALTERNATIVE.split(text, maxsplit=1)
    if len(parts) < 2 or not parts[0].strip():
        parts = _SUBTITLE.split(text, maxsplit=1)
    if len(parts) < 2:
        return set()
    full = match_key(title)
    main, subtitle = match_key(parts[0]), match_key(parts[1].rstrip(") "))
    # a one-word subtitle ("Red", "The Movie") names too many other films to stand alone
    keys = {main, subtitle} if len(subtitle.split()) >= 2 else {main}
    return {k for k in keys if k and k != full}


def title_from_slug(slug: str | None) -> tuple[str, int | None]:
    """A Letterboxd film slug (``castle-in-the-sky``, ``dune-2021``, or a /film/ link) -> a
    title to search for and the year the slug carries, if any."""
    text = (slug or "").strip().rstrip("/").rsplit("/", 1)[-1]
    match = re.match(r"^(?P<body>.+?)-(?P<year>(?:18|19|20)\d{2})(?:-\d+)?$", text)
    if match:
        return match.group("body").replace("-", " "), int(match.group("year"))
    return text.replace("-", " "), None
