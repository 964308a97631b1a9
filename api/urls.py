from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView

from . import views
from .docs import ApiDocs
from .errors import not_found
from .metrics import metrics

urlpatterns = [
    path("metrics", metrics, name="metrics"),
    path("api/v1/schema", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/docs", ApiDocs.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/workers", views.WorkerList.as_view(), name="api-workers"),
    *(path(f"api/v1/workers/actions/{action}", views.action_view(action).as_view(), name=f"api-worker-{action}")
      for action in views.actions()),
    path("api/v1/workers/actions/<str:action>", views.UnknownAction.as_view()),
    path("api/v1/workers/<str:name>", views.WorkerDetail.as_view(), name="api-worker"),
    path("api/v1/health", views.Health.as_view(), name="api-health"),
    path("api/v1/queues", views.Queues.as_view(), name="api-queues"),
    path("api/v1/progress", views.Progress.as_view(), name="api-progress"),
    path("api/v1/alerts", views.AlertList.as_view(), name="api-alerts"),
    path("api/v1/audit", views.AuditList.as_view(), name="api-audit"),
    path("api/v1/samples", views.SampleList.as_view(), name="api-samples"),
    path("api/v1/outcomes", views.OutcomeList.as_view(), name="api-outcomes"),
    path("api/v1/costs", views.Costs.as_view(), name="api-costs"),
    path("api/v1/corpora", views.CorpusList.as_view(), name="api-corpora"),
    path("api/v1/corpora/import", views.CorpusImport.as_view(), name="api-corpora-import"),
    path("api/v1/archives", views.ArchiveList.as_view(), name="api-archives"),
    path("api/v1/archives/create", views.ArchiveCreate.as_view(), name="api-archives-create"),
    path("api/v1/archives/<str:name>/verify", views.ArchiveVerify.as_view(), name="api-archive-verify"),
    path("api/v1/archives/<str:name>/download", views.ArchiveDownload.as_view(), name="api-archive-download"),
    path("api/v1/review", views.ReviewList.as_view(), name="api-review"),
    path("api/v1/references", views.References.as_view(), name="api-references"),
    path("api/v1/references/<str:name>", views.ReferenceDetail.as_view(), name="api-reference"),
    path("api/v1/quality", views.Quality.as_view(), name="api-quality"),
    path("api/v1/consolidations", views.ConsolidationStart.as_view(), name="api-consolidations"),
    path("api/v1/consolidations/<uuid:job>", views.ConsolidationStatus.as_view(), name="api-consolidation"),
    path("api/v1/consolidations/<uuid:job>/download", views.ConsolidationDownload.as_view(),
         name="api-consolidation-download"),
    re_path(r"^api/", not_found),
]
