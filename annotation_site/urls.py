from django.contrib import admin
from django.urls import include, path

from . import views

admin.site.site_header = "Annotation fleet console"
admin.site.site_title = "Annotation fleet"
admin.site.index_title = "Operations"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("", views.home, name="home"),
    path("admin/", admin.site.urls),
    path("", include("api.urls")),
    path("", include("workspace.urls")),
]
