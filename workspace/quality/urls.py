from django.urls import path

from . import views

app_name = "quality"

urlpatterns = [
    path("", views.index, name="index"),
    path("references/", views.references, name="references"),
    path("references/<str:name>/delete", views.delete, name="delete"),
]
