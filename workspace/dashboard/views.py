"""The live fleet dashboard: thin views over the snapshot, the charts, the worker page and the fleet services."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from workers_app.engine.keys import WorkerKey
from workers_app.fleet.rows import workers_for
from workers_app.monitoring.acknowledge import PERMISSION as HANDLE_ALERTS
from workers_app.monitoring.acknowledge import AlertActionRefused
from workers_app.redis_client import get_redis
from workers_app.runs.current import current_run
from workspace.access import requires

from .actions import CONFIRM, ActionRefused, allowed_actions, parse_action, run_action
from .alerts import SNOOZE_CHOICES, handle_alerts
from .charts import RANGES, fleet_charts, malformed_per_annotator, spend_per_annotator
from .snapshot import SHARED_KEY, fleet_snapshot, live_json
from .worker_page import worker_page

POLL_MS = 1000


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@require_GET
@requires("workers_app.view_worker")
def index(request: HttpRequest) -> HttpResponse:
    snapshot = fleet_snapshot()
    return render(request, "workspace/dashboard/index.html", {
        "section": "dashboard", "snapshot": snapshot, "actions": allowed_actions(request.user),
        "confirm": sorted(CONFIRM), "poll_ms": POLL_MS, "may_handle_alerts": request.user.has_perm(HANDLE_ALERTS),
        "snooze_choices": SNOOZE_CHOICES})


@require_GET
@requires("workers_app.view_worker", polled=True)
def live(request: HttpRequest) -> HttpResponse:
    # Never cached: every answer to a logged-in user is no-store (annotation_site.security_headers).
    return HttpResponse(live_json(), content_type="application/json")


@require_GET
@requires("workers_app.view_worker", polled=True)
def charts(request: HttpRequest) -> HttpResponse:
    """The charts over ?range=hour (the default), day or run; an unknown range is the hour."""
    snapshot = fleet_snapshot()
    run = current_run()
    window, charts = fleet_charts(request.GET.get("range", "hour"), run)
    return render(request, "workspace/dashboard/charts.html", {
        "charts": charts, "window": window, "ranges": RANGES,
        "malformed": malformed_per_annotator(snapshot.cells.values()), "spend": spend_per_annotator(run),
        "run": snapshot.run})


@require_POST
@requires("workers_app.view_worker")
def act(request: HttpRequest) -> HttpResponse:
    """Run one fleet action on the selected workers. Stop and restart are confirmed first: by the page's dialog
    (which sends ``confirmed=yes``), or, without JavaScript, by a confirmation page."""
    try:
        action = parse_action(request.POST.get("op", ""), request.POST.getlist("workers"))
    except ActionRefused as exc:
        return _refused(request, str(exc))
    if not request.user.has_perm(action.permission):
        raise PermissionDenied(f"needs {action.permission}")
    if action.needs_confirmation and request.POST.get("confirmed") != "yes":
        if _wants_json(request):
            return JsonResponse({"error": "confirmation needed", "detail": f"{action.operation} needs confirmed=yes"},
                                status=409)
        return render(request, "workspace/dashboard/confirm.html", {"section": "dashboard", "action": action})
    try:
        results = run_action(action, actor=request.user)
    except ActionRefused as exc:
        return _refused(request, str(exc))
    if _wants_json(request):
        return JsonResponse({"operation": action.operation, "results": [r.as_dict() for r in results]})
    for result in results:
        level = messages.SUCCESS if result.ok else messages.ERROR
        messages.add_message(request, level, f"{action.operation} {result.worker}: {result.message}")
    return redirect("workspace:dashboard:index")


@require_POST
@requires("workers_app.view_worker")
def alerts(request: HttpRequest) -> HttpResponse:
    """Acknowledge or snooze one kind of open alert (workers_app.monitoring.acknowledge, audited there)."""
    if not request.user.has_perm(HANDLE_ALERTS):
        raise PermissionDenied(f"needs {HANDLE_ALERTS}")
    try:
        done, count = handle_alerts(request.POST, user=request.user)
    except AlertActionRefused as exc:
        return _refused(request, str(exc))
    get_redis().delete(SHARED_KEY)  # the next poll shows it, not a snapshot made before
    text = f"{done} {count} alert{'s' if count != 1 else ''} of kind {request.POST.get('kind', '')}"
    if _wants_json(request):
        return JsonResponse({"done": done, "alerts": count, "message": text})
    messages.success(request, text[:1].upper() + text[1:] + ".")
    return redirect("workspace:dashboard:index")


def _refused(request: HttpRequest, reason: str) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"error": "bad request", "detail": reason}, status=400)
    messages.error(request, reason)
    return redirect("workspace:dashboard:index")


@require_GET
@requires("workers_app.view_worker")
def worker(request: HttpRequest, name: str) -> HttpResponse:
    try:
        [row] = workers_for([WorkerKey.parse(name)])
    except ValueError:
        raise Http404("no such worker") from None
    return render(request, "workspace/dashboard/worker.html", {"section": "dashboard", "page": worker_page(row)})
