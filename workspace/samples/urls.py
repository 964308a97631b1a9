from django.urls import path

from . import views

app_name = "samples"

urlpatterns = [
    path("", views.index, name="index"),
    path("<int:pk>/", views.detail, name="detail"),
    # Any other id is an external one (they may hold slashes); it redirects to the sample's page.
    path("<path:external_id>/", views.by_external_id, name="by_external_id"),
]
