"""Logging filters that keep the terminal readable: an ordinary refusal (403) or a missing page (404) is one line,
not a traceback; a server error keeps its traceback."""

from __future__ import annotations

import logging


class NoTracebackForClientErrors(logging.Filter):
    """Django logs a PermissionDenied with the exception attached; for any answer below 500 keep only the line."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
