import json

from django.contrib import admin, messages
from django.db.models import Avg, Count, F, Q, Sum
from django.utils.html import format_html

from audit.actions import Action
from audit.admin_helpers import AuditedModelAdmin, client_address
from audit.services import audited
from workers_app.catalogue.annotators import save_annotator
from workers_app.catalogue.domains import save_domain
from workers_app.catalogue.forms import AnnotatorKeyForm
from workers_app.engine.grammar import answer_grammar
from workers_app.engine.response_cache import clear_cache
from workers_app.engine.store import clear_backend_error
from workers_app.local_profile import use_local_gemma
from workers_app.models import Annotator, AnnotatorPrice, Domain


@admin.register(Domain)
class DomainAdmin(AuditedModelAdmin):
    list_display = ("slug", "title", "kind", "code_count", "prompt_version", "schema_version")
    readonly_fields = ("prompt_version", "schema_version", "answer_schema", "answer_grammar")
    fields = ("slug", "title", "kind", "codes", "parse_rules", "prompt_template", "few_shot", "prompt_version",
              "position", "review_below_confidence", "review_below_agreement", "schema_version", "answer_schema", "answer_grammar")

    @admin.display(description="codes")
    def code_count(self, obj: Domain) -> int:
        return len(obj.codes)

    def save_model(self, request, obj, form, change):
        if change:  # through the workspace's service: its audit row names what changed of prompt, codes, examples
            save_domain(obj, changed=list(form.changed_data), seen_version=None, actor=request.user,
                        client_address=client_address(request))
        else:
            super().save_model(request, obj, form, change)

    @staticmethod
    def _derived(obj: Domain, css: str, derive) -> str:
        # After a refused edit the page shows the form's values, which the domain's clean() has just refused.
        try:
            return format_html('<pre class="{}">{}</pre>', css, derive())
        except (ValueError, TypeError, KeyError, AttributeError):
            return "derived from the kind, codes and parse rules: shown once they are valid"

    @admin.display(description="answer schema (structured outputs)")
    def answer_schema(self, obj: Domain) -> str:
        """Derived from the kind, codes and parse rules: what json_schema and json_object requests send."""
        return self._derived(obj, "answer-schema", lambda: json.dumps(obj.answer_schema, indent=2))

    @admin.display(description="answer grammar (GBNF, structured: grammar)")
    def answer_grammar(self, obj: Domain) -> str:
        return self._derived(obj, "answer-grammar", lambda: answer_grammar(obj.kind, obj.code_list, obj.parse_rules))


class PriceInline(admin.TabularInline):
    """Versions, not edits: add a row valid from the day the new price applies; stored costs keep theirs."""

    model = AnnotatorPrice
    extra = 0
    fields = ("valid_from", "input_per_1k", "output_per_1k", "cache_read_per_1k", "cache_write_per_1k", "currency",
              "batch_percent")


@admin.register(Annotator)
class AnnotatorAdmin(AuditedModelAdmin):
    """Besides the settings, the numbers that tell whether a model is usable: calls, tokens, latency, malformed,
    cost and cache hits, over every run (as the annotator's budget is); a run's own are on its page."""

    form = AnnotatorKeyForm
    inlines = [PriceInline]

    list_display = ("number", "name", "backend", "request_mode", "structured", "mode", "model", "enabled", "calls", "tokens",
                    "mean_latency", "malformed_rate", "cost", "budget", "cache_hits", "backend_error")
    list_filter = ("backend", "structured", "mode", "enabled")
    readonly_fields = ("backend_error", "backend_error_at", "stored_key", "structured_refused",
                       "structured_refused_at", "baseline_version")
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
        save_annotator(obj, changed=form.changed_settings(), key=form.key_change(), actor=request.user,
                       client_address=client_address(request))

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

    @admin.action(description="Use the local Gemma 3 270M model (llama.cpp, completion mode, held to a grammar)",
                  permissions=["change"])
    def switch_to_local_gemma(self, request, queryset):
        for annotator in queryset:
            use_local_gemma(annotator, actor=request.user)
        self.message_user(request, f"{queryset.count()} annotator(s) now use the local model; start it with "
                          "./run.sh --local-llm", messages.SUCCESS)

    @admin.action(description="Clear the backend error (workers call the backend again, in the structured mode "
                              "again if the server had refused it)", permissions=["change"])
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
        ("Structured outputs", {
            "fields": ("structured", "structured_fallback", "structured_refused", "structured_refused_at",
                       "request_logprobs"),
            "description": "Ask the server to hold each answer to the domain's JSON schema (shown on each domain's "
                           "page); the answer is then read as JSON. A server that refuses the parameter stops the "
                           "annotator with a backend error, unless the fallback to free text is allowed: then the "
                           "refusal is recorded once, with an alert, and the annotator asks in free text until the "
                           "backend error is cleared.",
        }),
        ("Batch mode", {
            "fields": ("mode", "batch_protocol", "batch_size"),
            "description": "Batch mode sends the samples through the provider's batch API (OpenAI-style /files + "
                           "/batches, or Anthropic's Message Batches): answers within the provider's 24-hour window "
                           "at the batch price (each price version's batch percent). Batches are listed under "
                           "Batches; see the guide Add a real model.",
        }),
        ("Limits", {"fields": ("requests_per_minute", "temperature", "max_tokens", "timeout_seconds",
                               "max_retries", "max_input_chars", "answers_per_item")}),
        ("Cost and cache", {
            "fields": ("budget", "cache_responses"),
            "description": "Prices are below, one row per version: a call is charged at the price valid on its day. "
                           "The budget is in the currency of the prices.",
        }),
        ("Built-in backend", {"fields": ("builtin_profile", "builtin_latency_ms", "builtin_malformed_rate")}),
        ("Trained baseline", {
            "fields": ("baseline_version",),
            "description": "The trained backend answers with a TF-IDF + logistic-regression model learned from a "
                           "reference set, offline, with the label's probability: train a version with "
                           "<code>manage.py baseline train --annotator N --reference NAME</code> (it reports its "
                           "cross-validated quality there); <code>manage.py baseline show --annotator N</code> lists "
                           "the versions. A baseline, not a clinical model.",
        }),
    )
