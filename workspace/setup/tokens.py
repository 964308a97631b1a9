"""Personal API tokens in the workspace: make one (its secret shown once), list and revoke them. One's own, or
anyone's for a superuser. The rules (who may make a token for whom, its lifetime, how many) are api.tokens'; this
page only offers them."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from api.models import ApiToken
from api.tokens import MAX_LIFETIME, create_token, revoke_tokens, token_owners, visible_tokens
from workspace.access import requires

DEFAULT_DAYS = 90


class TokenForm(forms.Form):
    name = forms.CharField(max_length=ApiToken._meta.get_field("name").max_length,
                           help_text="what it is for, e.g. ci-nightly (the audit log names it)")
    days = forms.IntegerField(min_value=1, max_value=MAX_LIFETIME.days, initial=DEFAULT_DAYS, label="Valid for (days)",
                              help_text=f"at most {MAX_LIFETIME.days}")
    owner = forms.ModelChoiceField(queryset=get_user_model().objects.none(), required=False,
                                   help_text="superusers only: whose permissions the token carries")

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if user.is_superuser:
            self.fields["owner"].queryset = token_owners(user)
            self.fields["owner"].initial = user.pk
        else:
            del self.fields["owner"]


def _page(request: HttpRequest, *, form: TokenForm | None = None, made=None, status: int = 200) -> HttpResponse:
    return render(request, "workspace/setup/tokens.html", {
        "section": "setup", "tokens": visible_tokens(request.user).order_by("-created_at"), "made": made, "now": timezone.now(),
        "form": form or (TokenForm(user=request.user) if request.user.has_perm("api.add_apitoken") else None)},
        status=status)


@require_http_methods(["GET", "POST"])
@requires("api.view_apitoken")
def index(request: HttpRequest) -> HttpResponse:
    """The tokens; posted, a new token whose secret this page shows once."""
    if request.method == "GET":
        return _page(request)
    if not request.user.has_perm("api.add_apitoken"):
        raise PermissionDenied("needs api.add_apitoken")
    form = TokenForm(request.POST, user=request.user)
    if not form.is_valid():
        return _page(request, form=form, status=400)
    data = form.cleaned_data
    try:
        made = create_token(data.get("owner") or request.user, name=data["name"],
                            expires_at=timezone.now() + timedelta(days=data["days"]), actor=request.user)
    except ValidationError as exc:
        form.add_error(None, "; ".join(exc.messages))
        return _page(request, form=form, status=400)
    return _page(request, made=made)


@require_POST
@requires("api.add_apitoken")
def revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = visible_tokens(request.user).filter(pk=pk).first()
    if token is None:
        raise Http404("no such token of yours")
    if revoke_tokens([token], actor=request.user):
        messages.success(request, f"Revoked the token '{token.name}' of {token.user.get_username()}.")
    else:
        messages.error(request, f"The token '{token.name}' was revoked already.")
    return redirect("workspace:setup:tokens")
