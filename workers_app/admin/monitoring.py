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


@admin.register(AlertChannel)
class AlertChannelAdmin(AuditedModelAdmin):
    list_display = ("kind", "shown_target", "enabled")
