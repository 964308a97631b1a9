from django.contrib import admin

from admin_ops.admin_audit import AuditedModelAdmin
from workers_app.models import Annotator, Domain


@admin.register(Domain)
class DomainAdmin(AuditedModelAdmin):
    list_display = ("slug", "title", "kind", "code_count", "prompt_version")
    readonly_fields = ("prompt_version",)
    fields = ("slug", "title", "kind", "codes", "parse_rules", "prompt_template", "prompt_version", "position")

    @admin.display(description="codes")
    def code_count(self, obj: Domain) -> int:
        return len(obj.codes)


@admin.register(Annotator)
class AnnotatorAdmin(AuditedModelAdmin):
    list_display = ("number", "name", "backend", "model", "requests_per_minute", "enabled")
    list_filter = ("backend", "enabled")
    fieldsets = (
        (None, {"fields": ("number", "name", "enabled", "backend", "model")}),
        ("HTTP backend", {
            "fields": ("base_url", "api_key_env"),
            "description": "The built-in backend is an offline keyword baseline for demos and benchmarks: "
                           "it is not a clinical model. Real annotation needs an OpenAI-compatible backend.",
        }),
        ("Limits", {"fields": ("requests_per_minute", "temperature", "max_tokens", "timeout_seconds",
                               "max_retries")}),
    )
