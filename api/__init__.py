"""The HTTP API under /api/v1 and /metrics: an adapter over the same services and selectors as the admin."""
