from . import beat, catalogue, corpus, fleet, monitoring, outcomes, runs  # noqa: F401  (registers the admin pages)
