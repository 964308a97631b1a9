"""A demoted account loses its API tokens, wherever it was demoted (the admin, a workspace page, the shell): its
staff status or activity taken away, or its last group or permission. Connected by ApiConfig.ready()."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete

from audit.request_context import current_actor

from .tokens import revoke_if_not_allowed_in

# m2m_changed actions that can take an account's last grant away; a clear's holders are read before it happens.
WITHDRAWALS = {"post_remove", "post_clear"}
_MEMBERS = "_api_members_before"


def connect_receivers() -> None:
    user = get_user_model()
    post_save.connect(_account_saved, sender=user, dispatch_uid="api.account_saved")
    for name in ("groups", "user_permissions"):
        through = user._meta.get_field(name).remote_field.through
        m2m_changed.connect(_grants_changed, sender=through, dispatch_uid=f"api.grants_changed.{name}")
    pre_delete.connect(_remember_members, sender=Group, dispatch_uid="api.group_deleting")
    post_delete.connect(_check_members, sender=Group, dispatch_uid="api.group_deleted")


def _check(users) -> None:
    for user in users:
        revoke_if_not_allowed_in(user, actor=current_actor())


def _account_saved(sender, instance, update_fields=None, **kwargs) -> None:
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return  # a login, not a change of who the account is
    _check([instance])


def _grants_changed(sender, instance, action: str, reverse: bool, pk_set: set | None, **kwargs) -> None:
    """Forward (``user.groups.remove(g)``) the account is ``instance``; reverse (``group.user_set.remove(u)``) the
    accounts are ``pk_set``, or for a clear the holders read before it."""
    if action == "pre_clear" and reverse:
        relation = "groups" if isinstance(instance, Group) else "user_permissions"
        setattr(instance, _MEMBERS, list(get_user_model().objects.filter(**{relation: instance})))
    if action not in WITHDRAWALS:
        return
    if not reverse:
        _check([instance])
    elif action == "post_remove":
        _check(get_user_model().objects.filter(pk__in=pk_set or ()))
    else:
        _check(getattr(instance, _MEMBERS, []))


def _remember_members(sender, instance: Group, **kwargs) -> None:
    setattr(instance, _MEMBERS, list(instance.user_set.all()))


def _check_members(sender, instance: Group, **kwargs) -> None:
    _check(getattr(instance, _MEMBERS, []))
