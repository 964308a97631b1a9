"""Stored outcomes, read-only and one run at a time: the current run unless another (or every run) is chosen."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters

from audit.admin_helpers import ReadOnlyAdmin
from workers_app.engine.batch import cancel_batches
from workers_app.models import Batch, Outcome, Run
from workers_app.runs.current import current_run

# As in the workspace and the API: whoever may look at samples may look at their outcomes.
PERMISSION = "workers_app.view_sample"


class RunFilter(admin.SimpleListFilter):
    """Without a choice, the current run's outcomes; 'every run' shows them all, each with its run."""

    title = "run"
    parameter_name = "run"
    EVERY = "*"

    def lookups(self, request, model_admin) -> list[tuple[str, str]]:
        runs = Run.objects.order_by("-is_current", "-created_at", "-id").values_list("name", "is_current")
        return [*((name, f"{name} (current)" if current else name) for name, current in runs),
                (self.EVERY, "every run")]

    def choices(self, changelist):
        chosen = self.value() or current_run().name
        for value, label in self.lookup_choices:
            yield {"selected": chosen == value, "display": label,
                   "query_string": changelist.get_query_string({self.parameter_name: value})}

    def queryset(self, request, queryset):
        if self.value() == self.EVERY:
            return queryset
        if not self.value():
            return queryset.filter(run=current_run())
        if not Run.objects.filter(name=self.value()).exists():
            raise IncorrectLookupParameters(f"no run named {self.value()[:50]!r}")
        return queryset.filter(run__name=self.value())


@admin.register(Outcome)
class OutcomeAdmin(ReadOnlyAdmin):
    list_display = ("sample", "run", "annotator", "domain", "status", "label_text", "reason", "model",
                    "prompt_version", "created_at")
    list_filter = (RunFilter, "status", "annotator", "domain")
    list_select_related = ("run", "sample", "annotator", "domain")
    search_fields = ("sample__external_id",)
    show_full_result_count = False  # a count of every outcome is a full scan on a large store

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.has_perm(PERMISSION)

    def has_module_permission(self, request) -> bool:
        return request.user.has_perm(PERMISSION)


@admin.register(Batch)
class BatchAdmin(ReadOnlyAdmin):
    """Provider batches of batch-mode annotators: in flight (with their age) and ended, with counts and cost."""

    list_display = ("ref", "run", "annotator", "domain", "protocol", "state", "provider_status", "provider_id",
                    "requests", "succeeded", "failed", "reserved", "cost", "created_at", "submitted_at", "ended_at")
    list_filter = ("state", "protocol", "annotator", "domain")
    list_select_related = ("run", "annotator", "domain")
    search_fields = ("ref", "provider_id")
    actions = ["cancel_at_provider"]

    @admin.action(description="Cancel the selected batches at the provider", permissions=["cancel"])
    def cancel_at_provider(self, request, queryset):
        batches = list(queryset.select_related("annotator"))
        cancelled = cancel_batches(batches, actor=request.user)
        self.message_user(request, f"the provider accepted {cancelled} of {len(batches)} cancellation(s); the "
                                   "audit log has the reasons of any refused", messages.SUCCESS)

    def has_cancel_permission(self, request) -> bool:
        return request.user.has_perm("workers_app.pause_worker")
