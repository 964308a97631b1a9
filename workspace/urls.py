"""The research workspace: pages staff live in. Each part owns its own URLs, views and templates."""

from django.urls import include, path

from workspace.setup import people

app_name = "workspace"

urlpatterns = [
    path("dashboard/", include("workspace.dashboard.urls")),
    path("samples/", include("workspace.samples.urls")),
    path("review/", include("workspace.review.urls")),
    path("files/", include("workspace.files.urls")),
    path("runs/", include("workspace.runs.urls")),
    path("setup/", include("workspace.setup.urls")),
    path("jobs/", include("workspace.jobs.urls")),
    # An invited person sets a password here: no login, the link's token is the proof.
    path("welcome/<uidb64>/<token>/", people.Welcome.as_view(), name="welcome"),
    path("welcome/done/", people.welcome_done, name="welcome_done"),
    path("quality/", include("workspace.quality.urls")),
]
