from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.contrib.auth.models import Group

from .actions import Action
from .admin_helpers import AuditedModelAdmin, ReadOnlyAdmin
from .models import AuditLog, RefusalTally
from .request_context import current_actor, current_client_address
from .services import audited

# The user creation and password forms' fields: recorded under the one name "password", their values never.
PASSWORD_FIELDS = {"password", "password1", "password2", "usable_password"}


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    """Read-only for everyone, superusers included: the log is append-only."""

    list_display = ("at", "actor", "action", "target", "result", "repeated", "duration_ms", "client_address")
    list_filter = ("result", "action", "actor")
    search_fields = ("action", "target", "actor")
    date_hierarchy = "at"
    list_select_related = ("tally",)
    readonly_fields = ("repeated", "requests_seen")

    @staticmethod
    def _tally(row: AuditLog) -> RefusalTally | None:
        try:
            return row.tally
        except RefusalTally.DoesNotExist:
            return None

    @admin.display(description="repeated")
    def repeated(self, row: AuditLog) -> str:
        """A refused request stands for every refusal of its actor and client in its period (audit.refusals)."""
        tally = self._tally(row)
        if tally is None or tally.count == 1:
            return ""
        return f"×{tally.count} until {tally.last_at:%H:%M:%S}" + (" (many clients)" if tally.client == "*" else "")

    @admin.display(description="requests refused in the period")
    def requests_seen(self, row: AuditLog) -> str:
        tally = self._tally(row)
        return ", ".join(tally.requests) if tally is not None else ""


class AuditedPasswordChangeForm(AdminPasswordChangeForm):
    """The admin's password page saves through this form alone (not save_model): its row is written here."""

    def save(self, commit=True):
        with audited(Action.USER_CHANGE, actor=current_actor(), target=f"user {self.user}",
                     parameters={"edit": "password", "fields": ["password"]},
                     client_address=current_client_address()):
            return super().save(commit)


admin.site.unregister(get_user_model())
admin.site.unregister(Group)


@admin.register(get_user_model())
class AuditedUserAdmin(AuditedModelAdmin, UserAdmin):
    audit_action = Action.USER_CHANGE
    change_password_form = AuditedPasswordChangeForm

    def audit_parameters(self, obj, fields: list[str]) -> dict:
        named = ["password" if field in PASSWORD_FIELDS else field for field in fields]
        return {"fields": list(dict.fromkeys(named))}


@admin.register(Group)
class AuditedGroupAdmin(AuditedModelAdmin, GroupAdmin):
    audit_action = Action.GROUP_CHANGE
