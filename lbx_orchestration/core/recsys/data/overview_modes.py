"""How the content features read a film's overview (a module of its own: the CLI's options
need it without importing numpy)."""

OVERVIEW_MODES = ("wordllama", "words", "none")
#: what the content model is fitted with: the reading that won validation (docs/evaluation.md, section 6)
DEFAULT_OVERVIEW = "none"
