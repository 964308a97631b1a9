"""Celery tasks of the staff operations on data: thin calls into their services."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from .services.archive import scheduled_archive


@shared_task(name="admin_ops.scheduled_archive")
def scheduled_archive_task() -> str:
    return scheduled_archive(keep=settings.ARCHIVE_KEEP).name
