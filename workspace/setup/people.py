"""People in the workspace: add someone in a role (with a link to set their password; being in a role also makes
the account able to log in), change a role, deactivate or reactivate, and see who has what. Thin views over
admin_ops.services.people, which checks who may do what and audits it. The invitation page is open to the invited
person only (the link's token), not to staff."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import SetPasswordForm
from django.contrib.auth.views import PasswordResetConfirmView
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from admin_ops.services.people import (
    MANAGE_PEOPLE,
    PeopleRefused,
    add_person,
    invitation,
    people,
    set_active,
    set_role,
)
from admin_ops.services.roles import ROLES
from audit.actions import Action
from audit.request_context import client_address, current_client_address
from audit.services import audited
from workspace.access import requires


class AddForm(forms.Form):
    username = forms.CharField(max_length=150, label="User name",
                               help_text="letters, digits and @ . + - _ only; they log in with it")
    email = forms.EmailField(required=False, help_text="optional")
    role = forms.ChoiceField(choices=[(role, role) for role in ROLES], initial="viewer")


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=[(role, role) for role in ROLES])


def _invitation_link(request: HttpRequest, user) -> str:
    return request.build_absolute_uri(reverse("workspace:welcome", args=invitation(user)))


def _page(request: HttpRequest, *, form: AddForm | None = None, invited=None, status: int = 200) -> HttpResponse:
    return render(request, "workspace/setup/people.html", {
        "section": "setup", "people": people(), "form": form or AddForm(), "roles": ROLES,
        "invited": invited and {"user": invited, "link": _invitation_link(request, invited)}}, status=status)


@require_http_methods(["GET", "POST"])
@requires(MANAGE_PEOPLE)
def index(request: HttpRequest) -> HttpResponse:
    """Everyone and what they have; posted, a new person in a role, whose invitation link is shown once here."""
    if request.method == "GET":
        return _page(request)
    form = AddForm(request.POST)
    if not form.is_valid():
        return _page(request, form=form, status=400)
    data = form.cleaned_data
    try:
        user = add_person(data["username"], role=data["role"], email=data["email"], actor=request.user,
                          client_address=client_address(request))
    except (PeopleRefused, ValidationError) as exc:
        form.add_error(None, "; ".join(getattr(exc, "messages", [str(exc)])))
        return _page(request, form=form, status=400)
    return _page(request, invited=user)


def _person(pk: int):
    user = get_user_model().objects.filter(pk=pk).first()
    if user is None:
        raise Http404("no such person")
    return user


@require_POST
@requires(MANAGE_PEOPLE)
def role(request: HttpRequest, pk: int) -> HttpResponse:
    user = _person(pk)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"No change: {form.errors.as_text()}")
        return redirect("workspace:setup:people")
    role = form.cleaned_data["role"]
    return _changed(request, lambda **audit: set_role(user, role, **audit), f"{user.get_username()} is a {role} now.")


@require_POST
@requires(MANAGE_PEOPLE)
def active(request: HttpRequest, pk: int) -> HttpResponse:
    """``active=no`` deactivates (they can no longer log in; their sessions and API tokens stop working)."""
    user = _person(pk)
    wanted = request.POST.get("active") == "yes"
    return _changed(request, lambda **audit: set_active(user, wanted, **audit),
                    f"{user.get_username()} is {'active' if wanted else 'deactivated'} now.")


def _changed(request: HttpRequest, change, done: str) -> HttpResponse:
    """Make the change as the requesting user; say what became of it on the people page."""
    try:
        change(actor=request.user, client_address=client_address(request))
    except PeopleRefused as exc:
        messages.error(request, f"No change: {exc}")
    else:
        messages.success(request, done)
    return redirect("workspace:setup:people")


@require_POST
@requires(MANAGE_PEOPLE)
def invite(request: HttpRequest, pk: int) -> HttpResponse:
    """A new invitation link for someone who has not set a password yet."""
    user = _person(pk)
    if user.has_usable_password():
        messages.error(request, f"{user.get_username()} has set a password already.")
        return redirect("workspace:setup:people")
    return _page(request, invited=user)


class WelcomePasswordForm(SetPasswordForm):
    """The invited person's first password; the change is audited like one made in the admin."""

    def save(self, commit: bool = True):
        with audited(Action.USER_CHANGE, actor=self.user, target=f"user {self.user.get_username()}",
                     parameters={"edit": "password set from an invitation", "fields": ["password"]},
                     client_address=current_client_address()):
            return super().save(commit)


class Welcome(PasswordResetConfirmView):
    """The invitation link: set a password, then log in. A used or expired link says so."""

    form_class = WelcomePasswordForm
    template_name = "workspace/setup/welcome.html"
    success_url = reverse_lazy("workspace:welcome_done")


@require_GET
def welcome_done(request: HttpRequest) -> HttpResponse:
    return render(request, "workspace/setup/welcome_done.html", {"login": reverse("admin:login")})
