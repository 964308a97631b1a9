from django.urls import path

from . import views

app_name = "jobs"

urlpatterns = [
    path("consolidate", views.consolidate, name="consolidate"),
    path("archive", views.archive, name="archive"),
    path("<str:kind>/<uuid:job>/", views.job, name="job"),
    path("<str:kind>/<uuid:job>/live", views.live, name="live"),
]
