from django import forms
from django.contrib import admin, messages
from django.db.models import Avg, Count, F, Q, Sum

from audit.actions import Action
from audit.admin_helpers import AuditedModelAdmin, client_address
from audit.services import audited
from workers_app.engine.api_keys import clear_api_key, set_api_key
from workers_app.engine.response_cache import clear_cache
from workers_app.engine.store import clear_backend_error
from workers_app.local_profile import use_local_gemma
from workers_app.models import Annotator, AnnotatorPrice, Domain
from workers_app.models.key_rules import key_value_problem


@admin.register(Domain)
class DomainAdmin(AuditedModelAdmin):
    list_display = ("slug", "title", "kind", "code_count", "prompt_version")
    readonly_fields = ("prompt_version",)
    fields = ("slug", "title", "kind", "codes", "parse_rules", "prompt_template", "few_shot", "prompt_version",
              "position")

    @admin.display(description="codes")
    def code_count(self, obj: Domain) -> int:
        return len(obj.codes)


class AnnotatorForm(forms.ModelForm):
    """The API key is write-only: typed in, stored encrypted, never rendered back."""

    api_key = forms.CharField(
        required=False, label="API key", widget=forms.PasswordInput(render_value=False),
        help_text="Write-only: stored encrypted, never shown again, never exported. Leave empty to keep the "
                  "stored key; a new key reaches running workers within seconds.")
    clear_api_key = forms.BooleanField(required=False, label="Remove the stored API key")

    class Meta:
        model = Annotator
        fields = "__all__"
        help_texts = {"base_url": "e.g. http://127.0.0.1:8080/v1. Pointing it at another host (or port) removes the "
                                  "stored API key: type the key for that host below, in the same save."}

    def clean_api_key(self) -> str:
        key = self.cleaned_data["api_key"].strip()
        problem = key and key_value_problem(key)
        if problem:
            raise forms.ValidationError(problem)
        return key


class PriceInline(admin.TabularInline):
    """Versions, not edits: add a row valid from the day the new price applies; stored costs keep theirs."""

    model = AnnotatorPrice
    extra = 0
    fields = ("valid_from", "input_per_1k", "output_per_1k", "currency")


@admin.register(Annotator)
class AnnotatorAdmin(AuditedModelAdmin):
    """Besides the settings, the numbers that tell whether a model is usable: calls, tokens, latency, malformed,
    cost and cache hits, over every run (as the annotator's budget is); a run's own are on its page."""

    form = AnnotatorForm
    inlines = [PriceInline]

    list_display = ("number", "name", "backend", "request_mode", "model", "enabled", "calls", "tokens",
                    "mean_latency", "malformed_rate", "cost", "budget", "cache_hits", "backend_error")
    list_filter = ("backend", "enabled")
    readonly_fields = ("backend_error", "backend_error_at", "stored_key")
    actions = ["switch_to_local_gemma", "clear_error", "clear_response_cache"]

    def save_formset(self, request, form, formset, change):
        # Price versions are part of the annotator's settings: their edits are audited like the annotator's own.
        changed = [f"prices.{name}" for inline in formset.forms for name in inline.changed_data]
        if not changed and not formset.deleted_forms:
            return super().save_formset(request, form, formset, change)
        with audited(Action.ADMIN_CHANGE, actor=request.user, target=f"annotator {form.instance}",
                     parameters={"edit": "change", "fields": sorted(set(changed)),
                                 "deleted_prices": len(formset.deleted_forms)},
                     client_address=client_address(request)):
            return super().save_formset(request, form, formset, change)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if form.cleaned_data.get("api_key"):
            set_api_key(obj, form.cleaned_data["api_key"], actor=request.user)
        elif form.cleaned_data.get("clear_api_key"):
            clear_api_key(obj, actor=request.user)
        elif obj.api_key_dropped:
            self.message_user(request, f"The stored API key of {obj} was removed: its base URL now points at another "
                              "host. Type the key for that host in the API key field.", messages.WARNING)

    def audit_detail(self, obj: Annotator, form) -> dict:
        return {"api_key": Annotator.KEY_DROPPED} if obj.api_key_dropped and not form.cleaned_data.get("api_key") \
            else {}

    @admin.display(description="stored API key")
    def stored_key(self, obj: Annotator) -> str:
        return f"yes, set {obj.api_key_set_at:%Y-%m-%d %H:%M} UTC" if obj.api_key_encrypted else "none"

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            n_outcomes=Count("outcomes"), n_calls=Sum("outcomes__attempts"),
            n_tokens=Sum(F("outcomes__prompt_tokens") + F("outcomes__completion_tokens")),
            latency=Avg("outcomes__latency_ms"), n_malformed=Count("outcomes", filter=Q(outcomes__status="malformed")),
            total_cost=Sum("outcomes__cost"), n_cached=Count("outcomes", filter=Q(outcomes__cached=True)))

    @admin.display(description="calls (all runs)", ordering="n_calls")
    def calls(self, obj) -> int:
        return obj.n_calls or 0

    @admin.display(description="tokens", ordering="n_tokens")
    def tokens(self, obj) -> int:
        return obj.n_tokens or 0

    @admin.display(description="mean latency", ordering="latency")
    def mean_latency(self, obj) -> str:
        return "—" if obj.latency is None else f"{obj.latency:.0f} ms"

    @admin.display(description="malformed")
    def malformed_rate(self, obj) -> str:
        return "—" if not obj.n_outcomes else f"{obj.n_malformed / obj.n_outcomes:.1%}"

    @admin.display(description="cost (all runs)", ordering="total_cost")
    def cost(self, obj) -> str:
        return "—" if obj.total_cost is None else f"{obj.total_cost.normalize():f}"

    @admin.display(description="cache hits")
    def cache_hits(self, obj) -> str:
        return "—" if not obj.n_outcomes else f"{obj.n_cached / obj.n_outcomes:.1%}"

    @admin.action(description="Clear the response cache entries these annotators filled", permissions=["change"])
    def clear_response_cache(self, request, queryset):
        deleted = sum(clear_cache(actor=request.user, annotator=annotator) for annotator in queryset)
        self.message_user(request, f"deleted {deleted} cached response(s)", messages.SUCCESS)

    @admin.action(description="Use the local Gemma 3 270M model (llama.cpp, completion mode)",
                  permissions=["change"])
    def switch_to_local_gemma(self, request, queryset):
        for annotator in queryset:
            use_local_gemma(annotator, actor=request.user)
        self.message_user(request, f"{queryset.count()} annotator(s) now use the local model; start it with "
                          "./run.sh --local-llm", messages.SUCCESS)

    @admin.action(description="Clear the backend error (workers call the backend again)", permissions=["change"])
    def clear_error(self, request, queryset):
        for annotator in queryset:
            clear_backend_error(annotator, actor=request.user)
        self.message_user(request, f"cleared {queryset.count()} annotator(s); launch their workers to requeue",
                          messages.SUCCESS)
    fieldsets = (
        (None, {"fields": ("number", "name", "enabled", "backend", "request_mode", "model", "backend_error",
                           "backend_error_at")}),
        ("HTTP backend", {
            "fields": ("base_url", "stored_key", "api_key", "clear_api_key", "api_key_env"),
            "description": "The built-in backend is an offline keyword baseline for demos and benchmarks: "
                           "it is not a clinical model. Real annotation needs an OpenAI-compatible backend.",
        }),
        ("Limits", {"fields": ("requests_per_minute", "temperature", "max_tokens", "timeout_seconds",
                               "max_retries", "max_input_chars")}),
        ("Cost and cache", {
            "fields": ("budget", "cache_responses"),
            "description": "Prices are below, one row per version: a call is charged at the price valid on its day. "
                           "The budget is in the currency of the prices.",
        }),
        ("Built-in backend", {"fields": ("builtin_latency_ms", "builtin_malformed_rate")}),
    )
