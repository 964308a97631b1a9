from django import forms
from django.contrib import admin

from audit.admin_helpers import AuditedModelAdmin, ReadOnlyAdmin
from workers_app.models import Alert, AlertChannel, WorkerMetric


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ("opened_at", "kind", "key", "message", "resolved_at", "acknowledged_by", "snoozed_until", "delivered")
    list_filter = ("kind", ("resolved_at", admin.EmptyFieldListFilter))
    search_fields = ("key", "message")

    @admin.display(description="delivered", boolean=True)
    def delivered(self, obj: Alert) -> bool | None:
        return all(d.get("ok") for d in obj.deliveries) if obj.deliveries else None


@admin.register(WorkerMetric)
class WorkerMetricAdmin(ReadOnlyAdmin):
    list_display = ("at", "worker", "throughput", "malformed_rate", "latency_p50_ms", "latency_p95_ms",
                    "queue_length", "rss")
    list_filter = ("worker__annotator", "worker__domain")
    list_select_related = ("worker__annotator", "worker__domain")
    date_hierarchy = "at"


class AlertChannelForm(forms.ModelForm):
    """The target is write-only, like an API key: a webhook's path and query are often its secret. Typed in, never
    rendered back; left empty on a change, the stored target stays."""

    target = forms.CharField(
        max_length=500, required=False, label="New target", widget=forms.PasswordInput(render_value=False),
        help_text="An email address, or the webhook URL. Write-only: only scheme://host/… is shown again. Leave "
                  "empty to keep the stored one.")

    class Meta:
        model = AlertChannel
        fields = ("kind", "target", "enabled")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["target"] = ""  # never sent to the page; empty means "unchanged"

    def clean_target(self) -> str:
        typed = self.cleaned_data["target"].strip()
        if typed:
            return typed
        if self.instance.pk is None:
            raise forms.ValidationError("This field is required.")
        return self.instance.target


@admin.register(AlertChannel)
class AlertChannelAdmin(AuditedModelAdmin):
    list_display = ("kind", "shown_target", "enabled")
    form = AlertChannelForm
    readonly_fields = ("stored_target",)

    @admin.display(description="stored target")
    def stored_target(self, channel: AlertChannel) -> str:
        return channel.shown_target

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("kind", "target", "enabled")
        # A read-only page would render every model field's value: the target is never one of them.
        return ("kind", "stored_target", "target", "enabled") if self.has_change_permission(request, obj) \
            else ("kind", "stored_target", "enabled")
