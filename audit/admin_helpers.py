"""Admin helpers every app shares: audited saves, read-only pages, and the client address of a request."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from .actions import Action
from .services import audited


def client_address(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


class AuditedModelAdmin(admin.ModelAdmin):
    """Every add, change and delete made in the admin becomes an audit row, in the same transaction."""

    def _audited(self, request: HttpRequest, action: Action, obj, parameters: dict):
        return audited(action, actor=request.user, target=f"{self.model._meta.model_name} {obj}",
                       parameters=parameters, client_address=client_address(request))

    def save_model(self, request, obj, form, change):
        action = Action.ADMIN_CHANGE if change else Action.ADMIN_ADD
        with self._audited(request, action, obj, {"fields": form.changed_data}):
            super().save_model(request, obj, form, change)

    def delete_model(self, request, obj):
        with self._audited(request, Action.ADMIN_DELETE, obj, {}):
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
