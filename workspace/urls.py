"""The research workspace: pages staff live in. Each part owns its own URLs, views and templates."""

from django.urls import include, path

app_name = "workspace"

urlpatterns = [
    path("dashboard/", include("workspace.dashboard.urls")),
    path("samples/", include("workspace.samples.urls")),
    path("review/", include("workspace.review.urls")),
    path("files/", include("workspace.files.urls")),
    path("runs/", include("workspace.runs.urls")),
    path("quality/", include("workspace.quality.urls")),
]
