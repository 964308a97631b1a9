from . import catalogue, corpus, fleet  # noqa: F401  (registers the admin pages)
