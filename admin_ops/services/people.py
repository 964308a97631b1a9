"""People in the workspace: add someone in a role (which also lets them log in), change their role, deactivate
them, and see who has what. Each change is one audited service; the page and any later API are thin adapters.

Being staff is the product's concern, not the user's: the workspace and the admin admit staff only, so an account
that joins a role group, here or in the admin or a shell, is made staff (``make_role_members_staff``). Nobody may
hand out a role holding a permission they lack themselves, change a superuser unless they are one, or change
their own account here (no one locks themselves out)."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import PermissionDenied
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from audit.actions import Action
from audit.actors import Actor
from audit.request_context import current_actor, current_client_address
from audit.services import audited, record_event

from .roles import ROLES

MANAGE_PEOPLE = "admin_ops.manage_people"


class PeopleRefused(ValueError):
    """The change was not made; the message says why."""


@dataclass(frozen=True)
class Person:
    user: AbstractBaseUser
    role: str | None  # the highest role group the account is in
    other_groups: list[str]
    permissions: list[str]  # given to the account itself, besides its groups'

    @property
    def invited(self) -> bool:
        """Added, but no password set yet: the invitation link has not been used."""
        return not self.user.has_usable_password()


def _role(groups: list[str]) -> str | None:
    held = [name for name in ROLES if name in groups]
    return held[-1] if held else None


def people() -> list[Person]:
    """Every account with its role, other groups and own permissions, by user name (three queries)."""
    found = []
    for user in get_user_model().objects.order_by("username").prefetch_related(
            "groups", "user_permissions__content_type"):
        groups = sorted(group.name for group in user.groups.all())
        own = sorted(f"{p.content_type.app_label}.{p.codename}" for p in user.user_permissions.all())
        found.append(Person(user, _role(groups), [name for name in groups if name not in ROLES], own))
    return found


def _role_group(role: str) -> Group:
    if role not in ROLES:
        raise PeopleRefused(f"no role {role[:40]!r}: the roles are {', '.join(ROLES)}")
    group = Group.objects.filter(name=role).first()
    if group is None:
        raise PeopleRefused(f"the {role} group does not exist: run manage.py seed_defaults")
    return group


def _allowed(actor: Actor, group: Group | None = None) -> None:
    """The actor may manage people, and may give ``group`` (holding every permission it grants)."""
    if isinstance(actor, str):
        return  # a command or the system
    if not actor.has_perm(MANAGE_PEOPLE):
        raise PermissionDenied(f"needs {MANAGE_PEOPLE}")
    if group is not None and not actor.is_superuser:
        granted = {f"{app}.{codename}" for app, codename in group.permissions.values_list(
            "content_type__app_label", "codename")}
        lacking = sorted(granted - actor.get_all_permissions())
        if lacking:
            raise PermissionDenied(f"you may not give the {group.name} role: it grants {', '.join(lacking[:5])}"
                                   f"{' …' if len(lacking) > 5 else ''}, which you do not have")


def _may_change(actor: Actor, user: AbstractBaseUser) -> None:
    if isinstance(actor, str):
        return
    if user.pk == actor.pk:
        raise PeopleRefused("you cannot change your own account here: ask someone else who manages people")
    if user.is_superuser and not actor.is_superuser:
        raise PermissionDenied("only a superuser may change a superuser")


def add_person(username: str, *, role: str, email: str = "", actor: Actor,
               client_address: str | None = None) -> AbstractBaseUser:
    """A new staff account in ``role``, without a password: they set one with the link of ``invitation``."""
    with audited(Action.ADD_PERSON, actor=actor, target=f"user {username[:150]}", parameters={"role": role},
                 client_address=client_address):
        group = _role_group(role)
        _allowed(actor, group)
        model = get_user_model()
        existing = model.objects.filter(username__iexact=username).first()
        if existing is not None:
            raise PeopleRefused(f"an account named {existing.get_username()!r} exists already: change its role "
                                "instead")
        user = model(username=username, email=email, is_staff=True, is_active=True)
        user.set_unusable_password()
        user.full_clean()  # the user name's and e-mail's own rules
        user.save()
        user.groups.add(group)
    return user


def invitation(user: AbstractBaseUser) -> tuple[str, str]:
    """The two parts of a link that lets ``user`` set a password; it stops working once a password is set (and
    after PASSWORD_RESET_TIMEOUT)."""
    return urlsafe_base64_encode(force_bytes(user.pk)), default_token_generator.make_token(user)


def set_role(user: AbstractBaseUser, role: str, *, actor: Actor, client_address: str | None = None) -> None:
    """``user`` in ``role`` and no other role group (other groups stay), and staff so that they can log in."""
    with audited(Action.CHANGE_ROLE, actor=actor, target=f"user {user.get_username()}", parameters={"role": role},
                 client_address=client_address) as entry:
        group = _role_group(role)
        _allowed(actor, group)
        _may_change(actor, user)
        before = [name for name in user.groups.filter(name__in=ROLES).values_list("name", flat=True)]
        entry.detail = {"before": before}
        user.groups.remove(*Group.objects.filter(name__in=ROLES).exclude(pk=group.pk))
        user.groups.add(group)
        type(user).objects.filter(pk=user.pk).update(is_staff=True)


def set_active(user: AbstractBaseUser, active: bool, *, actor: Actor, client_address: str | None = None) -> None:
    """Deactivate (the account can no longer log in; its sessions and API tokens stop working) or reactivate."""
    action = Action.REACTIVATE_PERSON if active else Action.DEACTIVATE_PERSON
    with audited(action, actor=actor, target=f"user {user.get_username()}", client_address=client_address):
        _allowed(actor)
        _may_change(actor, user)
        type(user).objects.filter(pk=user.pk).update(is_active=active)
        user.is_active = active


def make_role_members_staff(sender, instance, action: str, reverse: bool, model, pk_set: set | None,
                            **kwargs) -> None:
    """m2m_changed of user.groups: an account that joins a role group becomes staff, so that it can log in."""
    if action != "post_add" or not pk_set:
        return
    users = get_user_model().objects.filter(is_staff=False)
    if reverse:  # group.user_set.add(...)
        joined = users.filter(pk__in=pk_set) if instance.name in ROLES else users.none()
    else:
        joined = users.filter(pk=instance.pk) if Group.objects.filter(pk__in=pk_set, name__in=ROLES).exists() \
            else users.none()
    for user in joined:
        record_event(Action.USER_CHANGE, actor=current_actor(), target=f"user {user.get_username()}",
                     parameters={"fields": ["is_staff"], "why": "joined a role group: staff may log in"},
                     client_address=current_client_address())
        type(user).objects.filter(pk=user.pk).update(is_staff=True)
        if not reverse:
            instance.is_staff = True
