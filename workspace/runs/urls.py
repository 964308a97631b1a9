from django.urls import path

from . import views

app_name = "runs"

# compare/ comes first: a run cannot be named "compare" (RunForm refuses it).
urlpatterns = [
    path("", views.index, name="index"),
    path("compare/", views.compare, name="compare"),
    path("compare/changed.csv", views.compare_csv, name="compare_csv"),
    path("<str:name>/", views.detail, name="detail"),
    path("<str:name>/switch", views.switch, name="switch"),
]
