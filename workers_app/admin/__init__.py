from . import beat, catalogue, corpus, fleet, monitoring  # noqa: F401  (registers the admin pages)
