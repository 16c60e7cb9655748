"""The rules that sit on top of the retrievers' scores: a title or a person named in full wins,
a query's language intent ("korean thriller", "un film français") keeps the films in that
original language, and weak hits are cut instead of padding a fixed count."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from lbx_orchestration.core.search_text import name_words, tokenize

EXACT, LEADING, PERSON, OTHER = 3, 2, 1, 0
ARTICLES = frozenset({"the", "a", "an", "le", "la", "les", "l", "el", "los", "las", "il", "lo", "der", "die", "das"})
# words that say "a film" without saying which one, in the languages the intents cover
FILLER = frozenset(
    {"film", "films", "movie", "movies", "cinema", "un", "une", "des", "de", "du", "en", "in", "a", "an", "the"}
    | {"some", "best", "good", "pelicula", "peliculas", "filme", "filmes", "eiga"}
)
# what a query may say -> TMDb's ISO 639-1 original_language
LANGUAGE_WORDS: dict[str, str] = {
    "korean": "ko", "coreen": "ko", "coreano": "ko", "korea": "ko",
    "japanese": "ja", "japonais": "ja", "japones": "ja", "japan": "ja", "anime": "ja",
    "french": "fr", "francais": "fr", "francaise": "fr", "france": "fr", "frances": "fr",
    "spanish": "es", "espagnol": "es", "espanol": "es", "espanola": "es",
    "italian": "it", "italien": "it", "italiano": "it",
    "german": "de", "allemand": "de", "deutsch": "de", "deutscher": "de",
    "chinese": "zh", "chinois": "zh", "mandarin": "zh", "cantonese": "cn", "hongkong": "cn",
    "hindi": "hi", "bollywood": "hi", "indian": "hi",
    "swedish": "sv", "danish": "da", "norwegian": "no", "russian": "ru", "polish": "pl",
    "portuguese": "pt", "brazilian": "pt", "persian": "fa", "iranian": "fa", "turkish": "tr",
    "thai": "th", "english": "en", "anglais": "en",
}  # fmt: skip


def title_key(text: str | None) -> str:
    """Accents, case, punctuation and a leading article do not tell two titles apart."""
    tokens = name_words(text)
    if len(tokens) > 1 and tokens[0] in ARTICLES:
        tokens = tokens[1:]
    return " ".join(tokens)


@dataclass(frozen=True)
class Intent:
    languages: frozenset[str]
    content: tuple[str, ...]  # the words left once the language and "a film" words are gone

    @property
    def listing(self) -> bool:
        """Only a language was asked for ("korean films"): list that language's films."""
        return bool(self.languages) and not self.content


def language_intent(query: str) -> Intent:
    tokens = tokenize(query)
    languages = frozenset(LANGUAGE_WORDS[t] for t in tokens if t in LANGUAGE_WORDS)
    content = tuple(t for t in tokens if t not in LANGUAGE_WORDS and t not in FILLER)
    return Intent(languages, content)


def title_tier(query_key: str, keys: Iterable[str]) -> int:
    """EXACT when a title is the query, LEADING when a title starts with it word for word."""
    tier = OTHER
    for key in keys:
        if key == query_key:
            return EXACT
        if key.startswith(query_key + " "):
            tier = LEADING
    return tier


def keep_hit(
    lexical: float,
    best_lexical: float,
    fuzzy: float,
    dense: float | None,
    best_dense: float | None,
    floors: Floors,
    dense_floor: float = 0.0,
) -> bool:
    """The relevance floor: a hit stays when one retriever is sure of it, relative to the best
    hit of that retriever for the same query (BM25 and cosine scales differ by query)."""
    if best_lexical > 0 and lexical >= floors.lexical_share * best_lexical:
        return True
    if fuzzy >= floors.fuzzy:
        return True
    return (
        dense is not None
        and best_dense is not None
        and dense >= dense_floor
        and dense >= best_dense - floors.dense_margin
    )


@dataclass(frozen=True)
class Floors:
    lexical_share: float = 0.5
    fuzzy: float = 0.6
    dense_margin: float = 0.08
