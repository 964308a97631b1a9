from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect


def home(request: HttpRequest) -> HttpResponse:
    """Staff who may watch the fleet land on the dashboard; everyone else (and the login) on the admin."""
    if request.user.has_perm("workers_app.view_worker"):
        return redirect("workspace:dashboard:index")
    return redirect("admin:index")


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness of the web process and its database, for a load balancer."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
