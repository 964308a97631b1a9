"""The API's interactive docs (Swagger UI, served by the console itself): behind a login like the schema, with its
start-up script in a file of its own (the site's Content-Security-Policy allows no inline script or style)."""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.urls import reverse
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework.exceptions import NotAuthenticated


class ApiDocs(SpectacularSwaggerSplitView):
    template_name = "api/swagger_ui.html"

    def handle_exception(self, exc):
        # A person opening the docs while logged out goes to the login page, and comes back here after it.
        if isinstance(exc, NotAuthenticated) and self.request.GET.get("script") is None:
            return redirect_to_login(self.request.get_full_path(), reverse("admin:login"))
        return super().handle_exception(exc)
