from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.utils.html import format_html

from workers_app.models import Run
from workers_app.runs.services import RunRefused, switch_run


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    """Read-only: runs are made on the workspace's runs page or with ``manage.py runs create``, which pin the
    catalogue; a form here could not."""

    list_display = ("name", "is_current", "description", "samples_chosen", "outcomes", "created_by", "created_at",
                    "code_version", "page")
    list_filter = ("is_current",)
    search_fields = ("name", "description")
    readonly_fields = ("name", "description", "is_current", "all_samples", "selection", "annotators", "domains",
                       "pinned", "code_version", "budget", "gold_reference", "gold_share", "gold_threshold",
                       "gold_min_items", "gold_window", "created_by", "created_at", "started_at")
    actions = ["make_current"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_outcomes=Count("outcomes", distinct=True))

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # deleting a run deletes its outcomes: manage.py runs delete NAME --yes

    def has_switch_permission(self, request) -> bool:
        return request.user.has_perm("workers_app.switch_run")

    @admin.display(description="samples")
    def samples_chosen(self, obj: Run) -> str:
        return "all" if obj.all_samples else str(obj.selection.get("samples", ""))

    @admin.display(description="outcomes", ordering="n_outcomes")
    def outcomes(self, obj: Run) -> int:
        return obj.n_outcomes

    @admin.display(description="page")
    def page(self, obj: Run) -> str:
        return format_html('<a href="/runs/{}/">open</a>', obj.name)

    @admin.action(description="Make the selected run current (the fleet works on it)", permissions=["switch"])
    def make_current(self, request, queryset: QuerySet[Run]):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one run to make current.", messages.ERROR)
            return
        run = queryset.get()
        try:
            queued = switch_run(run, actor=request.user)
        except RunRefused as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(request, f"run {run.name} is current; queued {sum(queued.values())} sample(s)",
                          messages.SUCCESS)
