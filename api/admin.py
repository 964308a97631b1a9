"""API tokens in the admin: made here (the secret is shown once, on the page that answers the form), revoked here,
never edited or deleted. Who may own one, and whose names a user sees, are the rules of api/tokens.py."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils import timezone

from .models import ApiToken
from .tokens import NewToken, create_token, revoke_tokens, token_owners, visible_tokens

DEFAULT_LIFETIME = timedelta(days=90)


class NewTokenForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ["user", "name", "expires_at"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["expires_at"].initial = lambda: timezone.now() + DEFAULT_LIFETIME
        self.fields["expires_at"].help_text = "at most a year away"


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "prefix", "created_at", "expires_at", "last_used_at", "status")
    search_fields = ("name", "prefix", "user__username")
    actions = ["revoke"]
    form = NewTokenForm

    def get_readonly_fields(self, request, obj=None):
        return ("user", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at") if obj else ()

    def get_queryset(self, request):
        return super().get_queryset(request) & visible_tokens(request.user)

    def get_list_filter(self, request):
        # The owner filter lists owners' names: only a superuser, who sees every token, sees it.
        return ("user",) if request.user.is_superuser else ()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            kwargs["queryset"] = token_owners(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_changeform_initial_data(self, request):
        return {"user": request.user.pk}

    @admin.display(description="status")
    def status(self, token: ApiToken) -> str:
        if token.revoked_at:
            return "revoked"
        return "active" if token.active else "expired"

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # revoked, never deleted: the audit log names them

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None):
        if request.method == "POST":
            # The admin's own form (its split date widget); an invalid one goes to the standard page, which shows
            # the errors and saves nothing.
            form = self.get_form(request)(request.POST)
            if form.is_valid():
                data = form.cleaned_data
                try:
                    made = create_token(data["user"], name=data["name"], expires_at=data["expires_at"],
                                        actor=request.user)
                except (PermissionDenied, ValidationError) as exc:
                    self.message_user(request, "; ".join(getattr(exc, "messages", [str(exc)])), messages.ERROR)
                    return HttpResponseRedirect(request.path)
                return self.shown_once(request, made)
        return super().add_view(request, form_url, extra_context)

    def shown_once(self, request: HttpRequest, made: NewToken) -> TemplateResponse:
        """The secret on the page that answers the form: never in a redirect's message, which would carry it in
        the (signed, not encrypted) messages cookie. The admin's views are sent with no-store."""
        return TemplateResponse(request, "admin/api/apitoken/made.html", {
            **self.admin_site.each_context(request), "opts": self.opts, "title": "Copy the new token now",
            "token": made.token, "secret": made.secret})

    @admin.action(description="Revoke the selected tokens", permissions=["add"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        tokens = list(queryset.select_related("user"))
        if not request.user.is_superuser and any(t.user_id != request.user.pk for t in tokens):
            self.message_user(request, "Only a superuser may revoke another user's tokens.", messages.ERROR)
            return
        revoked = revoke_tokens(tokens, actor=request.user)
        self.message_user(request, f"{revoked} token(s) revoked.", messages.SUCCESS)
