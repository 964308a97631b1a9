from django.contrib import admin
from django.urls import include, path

from . import views

admin.site.site_header = "Annotation fleet console"
admin.site.site_title = "Annotation fleet"
admin.site.index_title = "Operations"

# Error pages in the workspace's layout, with a way back; a 403 names the permission that is missing.
handler403 = "workspace.errors.permission_denied"
handler404 = "workspace.errors.page_not_found"
handler500 = "workspace.errors.server_error"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("", views.home, name="home"),
    path("admin/", admin.site.urls),
    path("", include("api.urls")),
    path("", include("workspace.urls")),
]
