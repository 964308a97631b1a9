from django.urls import path

from . import views

app_name = "files"

urlpatterns = [
    path("", views.index, name="index"),
    path("consolidated/<str:name>", views.consolidated, name="consolidated"),
    path("archives/<str:name>", views.archive, name="archive"),
]
