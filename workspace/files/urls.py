from django.urls import path

from . import views

app_name = "files"

urlpatterns = [
    path("", views.index, name="index"),
    path("consolidated/<str:name>", views.consolidated, name="consolidated"),
    path("runs/<str:run>/consolidated/<str:name>", views.run_consolidated, name="run_consolidated"),
    path("archives/<str:name>", views.archive, name="archive"),
]
