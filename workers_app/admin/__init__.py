from . import catalogue, corpus  # noqa: F401  (registers the admin pages)
