"""Admin helpers every app shares: audited saves, read-only pages, and the client address of a request."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from .actions import Action
from .request_context import client_address
from .services import audited

__all__ = ["AuditedModelAdmin", "ReadOnlyAdmin", "client_address"]

EDIT_ACTIONS = {"add": Action.ADMIN_ADD, "change": Action.ADMIN_CHANGE, "delete": Action.ADMIN_DELETE}


class AuditedModelAdmin(admin.ModelAdmin):
    """Every add, change and delete made in the admin becomes an audit row, in the same transaction.

    The row names the fields changed, never their values. ``audit_action`` gives a model one action for all three
    edits (the row's ``edit`` parameter tells them apart); ``audit_parameters`` adds what else the row should name.
    """

    audit_action: Action | None = None

    def audit_parameters(self, obj, fields: list[str]) -> dict:
        return {"fields": fields}

    def audit_detail(self, obj, form) -> dict:
        """What the row should also say about a saved object, known only once it is saved."""
        return {}

    def _audited(self, request: HttpRequest, edit: str, obj, fields: list[str]):
        return audited(self.audit_action or EDIT_ACTIONS[edit], actor=request.user,
                       target=f"{self.model._meta.model_name} {obj}",
                       parameters={"edit": edit, **self.audit_parameters(obj, fields)},
                       client_address=client_address(request))

    def save_model(self, request, obj, form, change):
        with self._audited(request, "change" if change else "add", obj, list(form.changed_data)) as entry:
            super().save_model(request, obj, form, change)
            entry.detail = self.audit_detail(obj, form)

    def delete_model(self, request, obj):
        with self._audited(request, "delete", obj, []):
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
