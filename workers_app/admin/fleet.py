from __future__ import annotations

import threading
import time

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.template.response import TemplateResponse
from django.utils.html import format_html

from workers_app.engine.live import read_live
from workers_app.fleet.hosts import ALIVE, LOST, InvalidHost, check_host_name, host_states, is_alive
from workers_app.fleet.results import WorkerResult
from workers_app.fleet.rows import ensure_worker_rows, key_of
from workers_app.fleet.services import OPERATIONS
from workers_app.models import Host, Worker, WorkerEvent
from workers_app.runs.current import current_run, run_samples, takes_part

CONFIRM = {"stop", "restart"}


class WorkerEventInline(admin.TabularInline):
    model = WorkerEvent
    extra = 0
    fields = ("at", "from_state", "to_state", "reason", "actor")
    readonly_fields = fields
    can_delete = False
    max_num = 0
    ordering = ("-at",)


def _fleet_action(name: str, description: str):
    def action(modeladmin: WorkerAdmin, request, queryset: QuerySet[Worker]):
        if name in CONFIRM and request.POST.get("confirmed") != "yes":
            return modeladmin.confirmation(request, queryset, name)
        results = OPERATIONS[name](list(queryset.select_related("annotator", "domain")), actor=request.user)
        modeladmin.report(request, name, results)
        return None

    action.__name__ = f"{name}_workers"
    return admin.action(description=description, permissions=[name])(action)


@admin.action(description="Move to another host…", permissions=["move"])
def move_workers_action(modeladmin: WorkerAdmin, request, queryset: QuerySet[Worker]):
    """Asks for the host first; a bad name is said on that page and changes nothing."""
    error = ""
    if request.POST.get("confirmed") == "yes":
        try:
            to_host = check_host_name(request.POST.get("to_host", ""))
        except InvalidHost as exc:
            error = str(exc)
        else:
            results = OPERATIONS["move"](list(queryset.select_related("annotator", "domain")), actor=request.user,
                                         to_host=to_host)
            modeladmin.report(request, "move", results)
            return None
    return modeladmin.confirmation(request, queryset, "move", hosts=host_states(), error=error)


move_workers_action.__name__ = "move_workers"


@admin.register(Worker)
class WorkerAdmin(admin.ModelAdmin):
    list_display = ("name_display", "state_badge", "desired_state", "heartbeat_age", "progress", "restarts",
                    "placement", "short_error")
    list_filter = ("annotator", "domain", "observed_state", "desired_state", "host")
    list_per_page = 50
    inlines = [WorkerEventInline]
    _request = threading.local()
    actions = [_fleet_action("launch", "Launch (sync, queue, run)"), _fleet_action("pause", "Pause"),
               _fleet_action("resume", "Resume"), _fleet_action("stop", "Stop (graceful)…"),
               _fleet_action("restart", "Restart…"), _fleet_action("flush", "Flush workbooks"),
               move_workers_action]

    class Media:
        css = {"all": ("workers_app/admin.css",)}

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("annotator", "domain")

    def changelist_view(self, request, extra_context=None):
        ensure_worker_rows()
        # One pipelined read for every row's heartbeat and counters, not two round trips per row.
        rows = list(Worker.objects.select_related("annotator", "domain"))
        live = read_live([key_of(row) for row in rows], time.time())
        # The admin object serves every request thread; the readings belong to this request only.
        self._request.live = {row.pk: state for row, state in zip(rows, live, strict=True)}
        run = self._request.run = current_run()
        self._request.total = run_samples(run).count()
        self._request.hosts = host_states()
        extra_context = {**(extra_context or {}), "subtitle": f"Progress in the current run, {run.name}"}
        return super().changelist_view(request, extra_context)

    # -- columns

    @admin.display(description="worker", ordering="annotator__number")
    def name_display(self, obj: Worker) -> str:
        return obj.name

    @admin.display(description="state", ordering="observed_state")
    def state_badge(self, obj: Worker) -> str:
        # Colours by class (workers_app/admin.css): the pages carry no inline style.
        return format_html('<span class="state-badge state-{}">{}</span>', obj.observed_state, obj.observed_state)

    @admin.display(description="heartbeat")
    def heartbeat_age(self, obj: Worker) -> str:
        state = getattr(self._request, "live", {}).get(obj.pk)
        age = None if state is None else state.heartbeat_age(time.time())
        return "—" if age is None else f"{age:.0f} s ago"

    @admin.display(description="done / samples")
    def progress(self, obj: Worker) -> str:
        run = getattr(self._request, "run", None)
        if run is not None and not takes_part(run, obj.annotator.number, obj.domain.slug):
            return "not in this run"
        state = getattr(self._request, "live", {}).get(obj.pk)
        ok, bad = (state.ok, state.malformed) if state is not None else (0, 0)
        note = f" ({bad} malformed)" if bad else ""
        return f"{ok + bad} / {getattr(self._request, 'total', 0)}{note}"

    @admin.display(description="host", ordering="host")
    def placement(self, obj: Worker) -> str:
        state = getattr(self._request, "hosts", {}).get(obj.host, "")
        moving = f" (moving from {obj.moving_from})" if obj.moving_from else ""
        if state == LOST:
            return format_html('{} <strong class="host-lost">LOST</strong>{}', obj.host, moving)
        return f"{obj.host}{moving}"

    @admin.display(description="last error")
    def short_error(self, obj: Worker) -> str:
        return obj.last_error[:80]

    # -- permissions: the fleet is driven by actions, never edited by hand

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def _may(self, request, name: str) -> bool:
        return request.user.has_perm(f"workers_app.{name}_worker")

    def has_launch_permission(self, request):
        return self._may(request, "launch")

    def has_pause_permission(self, request):
        return self._may(request, "pause")

    def has_resume_permission(self, request):
        return self._may(request, "resume")

    def has_stop_permission(self, request):
        return self._may(request, "stop")

    def has_restart_permission(self, request):
        return self._may(request, "restart")

    def has_flush_permission(self, request):
        return self._may(request, "flush")

    def has_move_permission(self, request):
        return self._may(request, "move")

    # -- helpers the actions use

    def confirmation(self, request, queryset: QuerySet[Worker], name: str, **extra) -> TemplateResponse:
        context = {**self.admin_site.each_context(request), "title": f"{name.capitalize()} {queryset.count()} "
                   "worker(s)?", "workers": queryset, "action": f"{name}_workers", "verb": name,
                   "opts": self.model._meta, "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME, **extra}
        return TemplateResponse(request, "admin/workers_app/worker/confirm_action.html", context)

    def report(self, request, name: str, results: list[WorkerResult]) -> None:
        failed = [r for r in results if not r.ok]
        for result in results:
            self.message_user(request, f"{name} {result.worker}: {result.message} ({result.state})",
                              messages.ERROR if not result.ok else messages.SUCCESS)
        if failed:
            self.message_user(request, f"{len(failed)} of {len(results)} worker(s) did not {name}.", messages.WARNING)


@admin.register(Host)
class HostAdmin(admin.ModelAdmin):
    """Hosts appear when their agent first beats; placement is changed by moving workers, never here."""

    list_display = ("name", "state", "workers", "last_seen", "agent_pid", "agent_started_at")

    @admin.display(description="state")
    def state(self, obj: Host) -> str:
        return ALIVE if is_alive(obj.name) else LOST

    @admin.display(description="workers")
    def workers(self, obj: Host) -> int:
        return Worker.objects.filter(host=obj.name).count()

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
