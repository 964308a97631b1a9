"""Admin helpers shared by every app: audited saves and the client address of a request."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from .audit import audited


def client_address(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


class AuditedModelAdmin(admin.ModelAdmin):
    """Every add, change and delete made in the admin becomes an audit row, in the same transaction."""

    def _audited(self, request: HttpRequest, verb: str, obj, parameters: dict):
        name = f"{verb}_{self.model._meta.model_name}"
        return audited(name, actor=request.user, target=str(obj), parameters=parameters,
                       client_address=client_address(request))

    def save_model(self, request, obj, form, change):
        with self._audited(request, "change" if change else "add", obj, {"fields": form.changed_data}):
            super().save_model(request, obj, form, change)

    def delete_model(self, request, obj):
        with self._audited(request, "delete", obj, {}):
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Nobody adds, edits or deletes these rows in the admin (logs, records of what happened)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
