from . import beat, catalogue, corpus, fleet, monitoring, runs  # noqa: F401  (registers the admin pages)
