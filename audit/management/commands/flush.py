"""Django's ``flush``, which would delete the audit log: only the test runner (which flushes between tests) may
empty it; anywhere else the command refuses before touching anything."""

from __future__ import annotations

from django.core.management.base import CommandError
from django.core.management.commands import flush
from django.db import connections

from audit.maintenance import maintenance_window, under_test_runner


class Command(flush.Command):
    help = "Removes all data but, outside the test runner, refuses: the audit log is append-only."

    def handle(self, **options):
        if not under_test_runner():
            raise CommandError("flush refused: it would delete the audit log, which is append-only (the database "
                               "refuses it too). To remove outcomes, samples or corpora use `manage.py reset`.")
        with maintenance_window(connections[options["database"]], reason="flush by the test runner"):
            super().handle(**options)
