"""How the content features read a film's overview (a module of its own: the CLI's options
need it without importing numpy)."""

OVERVIEW_MODES = ("wordllama", "words", "none")
#: what the content model is fitted with (docs/evaluation.md, section 6): the best reading on cold-film
#: validation unless others are within that measurement's 95% interval; then the member protocol
#: decides among them. On the bundled data none, words and WordLlama validate within 0.011 of each
#: other (the interval: ±0.0196) and words found the most hidden films (8 of 48, none 6), validating
#: above WordLlama (which also found 8).
DEFAULT_OVERVIEW = "words"
