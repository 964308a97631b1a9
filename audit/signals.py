"""Signals the audit app sends, for layers above it to act on without the audit app knowing them."""

from __future__ import annotations

from django.dispatch import Signal

# A committed row could not be written to the mirror file: mirror_failed.send(sender, row_id=..., error=...).
mirror_failed = Signal()
