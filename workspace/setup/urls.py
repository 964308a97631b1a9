from django.urls import path

from . import annotators, corpora, domains, people, tokens, views

app_name = "setup"

urlpatterns = [
    path("", views.index, name="index"),
    path("corpora/", corpora.index, name="corpora"),
    path("corpora/<str:token>/", corpora.preview, name="corpus_preview"),
    path("corpora/<str:token>/start", corpora.start, name="corpus_start"),
    path("annotators/", annotators.index, name="annotators"),
    path("annotators/<int:number>/", annotators.detail, name="annotator"),
    path("annotators/<int:number>/try", annotators.trial, name="annotator_try"),
    path("domains/", domains.index, name="domains"),
    path("domains/<str:slug>/", domains.detail, name="domain"),
    path("people/", people.index, name="people"),
    path("people/<int:pk>/role", people.role, name="person_role"),
    path("people/<int:pk>/active", people.active, name="person_active"),
    path("people/<int:pk>/invite", people.invite, name="person_invite"),
    path("tokens/", tokens.index, name="tokens"),
    path("tokens/<int:pk>/revoke", tokens.revoke, name="token_revoke"),
]
