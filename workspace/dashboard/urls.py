from django.urls import path

from . import views

app_name = "dashboard"

urlpatterns = [
    path("", views.index, name="index"),
    path("live", views.live, name="live"),
    path("charts", views.charts, name="charts"),
    path("act", views.act, name="act"),
    path("alerts", views.alerts, name="alerts"),
    path("workers/<str:name>/", views.worker, name="worker"),
]
