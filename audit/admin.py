from django.contrib import admin

from .admin_helpers import ReadOnlyAdmin
from .models import AuditLog


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    """Read-only for everyone, superusers included: the log is append-only."""

    list_display = ("at", "actor", "action", "target", "result", "duration_ms", "client_address")
    list_filter = ("result", "action", "actor")
    search_fields = ("action", "target", "actor")
    date_hierarchy = "at"
