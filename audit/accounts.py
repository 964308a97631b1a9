"""Account events become audit rows: logins, failed logins (the username tried, never the password), logouts, and
every grant or withdrawal of a permission or a group membership, wherever it is made (admin, shell, command).

Connected by AuditConfig.ready(); the receivers need the auth models, which are loaded only then.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import models
from django.db.models.signals import m2m_changed
from django.http import HttpRequest

from .actions import Action
from .request_context import client_address, current_actor, current_client_address
from .services import record_event, record_refusal

# m2m_changed actions worth a row: a clear is recorded before it happens, while its members can still be read.
RECORDED_CHANGES = {"post_add": "added", "post_remove": "removed", "pre_clear": "removed"}


def grant_fields() -> list[models.ManyToManyField]:
    """The relations that give someone a permission."""
    user = get_user_model()
    return [user._meta.get_field("groups"), user._meta.get_field("user_permissions"),
            Group._meta.get_field("permissions")]


def connect_receivers() -> None:
    user_logged_in.connect(audit_login, dispatch_uid="audit.login")
    user_login_failed.connect(audit_login_failed, dispatch_uid="audit.login_failed")
    user_logged_out.connect(audit_logout, dispatch_uid="audit.logout")
    for field in grant_fields():
        m2m_changed.connect(audit_grant, sender=field.remote_field.through, dispatch_uid=f"audit.grant.{field}")


def audit_login(sender, request: HttpRequest, user, **kwargs) -> None:
    record_event(Action.LOGIN, actor=user, target=f"user {user.get_username()}",
                 client_address=client_address(request))


def audit_login_failed(sender, credentials: dict, request: HttpRequest | None = None, **kwargs) -> None:
    # Django has already masked the password in ``credentials``; only the username is kept all the same.
    username = str(credentials.get(get_user_model().USERNAME_FIELD, ""))[:150]
    # django-axes, connected before us, flags the attempt that reaches or exceeds the failure limit.
    locked_out = getattr(request, "axes_locked_out", False)
    reason = "locked out after too many failed logins" if locked_out else "wrong username or password"
    record_refusal(Action.LOGIN_FAILED, actor="anonymous", reason=reason, target=f"user {username}",
                   parameters={"username": username}, client_address=client_address(request))


def audit_logout(sender, request: HttpRequest | None, user, **kwargs) -> None:
    if user is None:
        return  # nobody was logged in
    record_event(Action.LOGOUT, actor=user, target=f"user {user.get_username()}",
                 client_address=client_address(request))


def audit_grant(sender, instance, action: str, reverse: bool, model: type[models.Model], pk_set: set | None,
                **kwargs) -> None:
    if action not in RECORDED_CHANGES:
        return
    field = next(field for field in grant_fields() if field.remote_field.through is sender)
    if action == "pre_clear":
        lookup = field.name if reverse else field.related_query_name()
        pk_set = set(model._default_manager.filter(**{lookup: instance}).values_list("pk", flat=True))
    if not pk_set:
        return
    parameters = {"relation": f"{field.model._meta.model_name}.{field.name}",
                  RECORDED_CHANGES[action]: related_labels(model, pk_set)}
    record_event(Action.PERMISSION_CHANGE, actor=current_actor(), target=f"{instance._meta.model_name} {instance}",
                 parameters=parameters, client_address=current_client_address())


def related_labels(model: type[models.Model], pks: set) -> list[str]:
    if model is Permission:
        rows = Permission.objects.filter(pk__in=pks).values_list("content_type__app_label", "codename")
        return sorted(f"{app}.{codename}" for app, codename in rows)
    return sorted(str(obj) for obj in model._default_manager.filter(pk__in=pks))
