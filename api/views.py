"""The /api/v1 endpoints: each checks its permission, validates its input and calls one selector or service."""

from __future__ import annotations

import uuid
from pathlib import Path

from django.conf import settings
from django.db.models import QuerySet
from django.db.models.functions import Coalesce
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers as drf
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import ListAPIView
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from admin_ops.models import Archive
from admin_ops.services.archive import ArchiveError, create_archive, verify_and_record
from annotation_site.uploads import upload_on_disk
from audit.models import AuditLog
from audit.request_context import client_address
from workers_app.engine.cost import cost_totals
from workers_app.engine.queues import UnknownWorker
from workers_app.fleet.rows import select_workers
from workers_app.fleet.selectors import UnknownRun, chosen_run, queue_stats
from workers_app.fleet.services import OPERATIONS
from workers_app.importing.service import SHOWN_PROBLEMS, ImportRejected, import_corpus
from workers_app.models import Alert, Corpus, Outcome, Run, Sample, Worker
from workers_app.references.importer import PROVENANCE_FIELDS, Provenance, delete_reference, import_reference
from workers_app.references.options import ReferenceRefused, layout_from_texts
from workers_app.references.quality import quality_document, run_quality
from workers_app.references.selectors import UnknownReference, reference_by_name, reference_summaries

from . import serializers as s
from .authentication import acting
from .errors import ApiError
from .jobs import consolidation_status, consolidation_workbook, start_consolidation
from .pagination import CheckedPages
from .selectors import find_worker, fleet_health, fleet_progress, fleet_status, review_items

# Options an action takes from the body, besides the selection; every other action takes none.
ACTION_OPTIONS = {"stop": ("force",), "restart": ("force",), "move": ("to_host",)}
REQUIRED_OPTIONS = {"move": ("to_host",)}
# The API answers at once; a client follows the workers' state with GET /workers.
FIXED_OPTIONS = {name: {"wait": False} for name in ("launch", "stop", "restart", "move")}
READ_ONLY_OPERATIONS = {"status"}


def actions() -> list[str]:
    return [name for name in OPERATIONS if name not in READ_ONLY_OPERATIONS]


def require(request: Request, permission: str) -> None:
    if not request.user.has_perm(permission):
        raise PermissionDenied(f"you need the '{permission}' permission")


def checked(serializer_class: type[drf.Serializer], data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def no_body(request: Request) -> None:
    """An endpoint that takes no body refuses a JSON one, rather than acting as though the caller had sent nothing
    (it is read, so a malformed one is refused as such)."""
    if request.content_type.startswith("application/json") and request.data not in ({}, None):
        raise ApiError(422, "invalid_request", "this endpoint takes no body; send none (or {})")


def run_of(scope: dict) -> Run:
    """The run a checked ``run`` parameter names (taken out of ``scope``); the current run when it was left out."""
    try:
        return chosen_run(scope.pop("run", None))
    except UnknownRun as exc:
        raise ApiError(404, "unknown_run", f"run: {exc}") from None


def unknown(exc: UnknownWorker) -> ApiError:
    return ApiError(404, "unknown_worker", str(exc))


ERRORS = {
    401: OpenApiResponse(s.ErrorSerializer, description="no valid token or session"),
    403: OpenApiResponse(s.ErrorSerializer, description="the permission named in detail is missing"),
    422: OpenApiResponse(s.ErrorSerializer, description="a parameter or field is not valid; detail names it"),
    429: OpenApiResponse(s.ErrorSerializer, description="this token's request budget is spent; see Retry-After"),
}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
JSON_BODY = {400: OpenApiResponse(s.ErrorSerializer, description="the body is not JSON"),
             415: OpenApiResponse(s.ErrorSerializer, description="the body is not application/json")}
NOT_FOUND = {404: OpenApiResponse(s.ErrorSerializer, description="no such worker, annotator or domain")}
NO_RUN = {404: OpenApiResponse(s.ErrorSerializer, description="no run of the name given in `run`")}


class WorkerList(APIView):
    @extend_schema(operation_id="workers_list", parameters=[s.WorkerFilterSerializer],
                   responses={200: s.WorkerStatusSerializer(many=True), **ERRORS, **NOT_FOUND},
                   summary="Every worker (or those of an annotator / domain) with state, heartbeat and progress")
    def get(self, request: Request) -> Response:
        require(request, "workers_app.view_worker")
        scope = checked(s.WorkerFilterSerializer, request.query_params.dict())
        try:
            workers = select_workers(scope.get("annotator"), scope.get("domain"))
        except UnknownWorker as exc:
            raise unknown(exc) from None
        return Response(fleet_status(workers))


class WorkerDetail(APIView):
    @extend_schema(operation_id="workers_detail", responses={200: s.WorkerDetailSerializer, **ERRORS, **NOT_FOUND},
                   parameters=[OpenApiParameter("name", str, OpenApiParameter.PATH, pattern=r"^annotator_\d+_\w+$",
                                                description="annotator_N_domain")],
                   summary="One worker with its heartbeat and its five health checks")
    def get(self, request: Request, name: str) -> Response:
        require(request, "workers_app.view_worker")
        try:
            worker = find_worker(name)
        except UnknownWorker as exc:
            raise unknown(exc) from None
        return Response(fleet_status([worker], with_checks=True)[0])


class WorkerAction(APIView):
    """POST /api/v1/workers/actions/<action>: one path per fleet operation, so that each documents its own body."""

    action = ""

    def post(self, request: Request, action: str = "") -> Response:
        action = self.action or action
        if action not in actions():
            raise ApiError(404, "unknown_action", f"no action '{action}'; the actions are {', '.join(actions())}")
        require(request, f"workers_app.{action}_worker")
        body = checked(s.ActionSerializer, request.data)
        options = self._options(action, body)
        workers = self._selected(body)
        try:
            results = OPERATIONS[action](workers, actor=acting(request), **options, **FIXED_OPTIONS.get(action, {}))
        except ValueError as exc:  # an operation refusing an option's value (e.g. a host name) before any change
            raise ApiError(422, "invalid_request", str(exc)) from None
        shown = [r.as_dict() for r in results]
        busy = [r for r in results if not r.ok and "busy" in r.message]
        if busy:
            raise ApiError(409, "busy", "; ".join(r.message.removeprefix("failed: ") for r in busy), results=shown)
        return Response({"action": action, "ok": all(r.ok for r in results), "results": shown})

    @staticmethod
    def _options(action: str, body: dict) -> dict:
        allowed = ACTION_OPTIONS.get(action, ())
        given = {name: body[name] for name in s.OPTION_FIELDS if name in body}
        for name in given:
            if name not in allowed:
                raise ApiError(422, f"invalid_{name}", f"{name}: {action} takes no option '{name}'")
        for name in REQUIRED_OPTIONS.get(action, ()):
            if name not in given:
                raise ApiError(422, f"invalid_{name}", f"{name}: {action} needs '{name}'")
        return given

    @staticmethod
    def _selected(body: dict) -> list[Worker]:
        try:
            if "worker" in body:
                return [find_worker(body["worker"])]
            return select_workers(body.get("annotator"), body.get("domain"))
        except UnknownWorker as exc:
            raise unknown(exc) from None


@extend_schema(exclude=True)
class UnknownAction(WorkerAction):
    """Any other name under actions/: a 404 that names the actions there are."""


def action_view(action: str) -> type[WorkerAction]:
    """The view of one action, with its body's schema: the selection and exactly the options it takes."""
    options = ", ".join(f"`{o}`" for o in ACTION_OPTIONS.get(action, ())) or "none"
    documented = extend_schema(
        operation_id=f"workers_{action}", tags=["worker actions"],
        request={"application/json": s.action_body_schema(ACTION_OPTIONS.get(action, ()),
                                                          REQUIRED_OPTIONS.get(action, ()))},
        responses={200: s.ActionResultSerializer, **ERRORS, **NOT_FOUND, **JSON_BODY,
                   409: OpenApiResponse(s.BusySerializer, description="another operation holds a worker")},
        summary=f"{action.capitalize()} one worker, an annotator's or a domain's workers, or all",
        description=f"Needs `workers_app.{action}_worker`. Body: `worker`, or `annotator` and/or `domain`, or "
                    f"`all: true`; options: {options}. Answers at once with one result per worker; follow their "
                    "state with GET /api/v1/workers.")

    def post(self, request: Request) -> Response:  # its own function: extend_schema annotates the one it gets
        return WorkerAction.post(self, request)

    return type(f"{action.capitalize()}Action", (WorkerAction,), {"action": action, "post": documented(post)})


class Health(APIView):
    @extend_schema(operation_id="health", responses={200: s.HealthSerializer, **ERRORS},
                   summary="The five health checks of every worker")
    def get(self, request: Request) -> Response:
        require(request, "workers_app.view_worker")
        return Response(fleet_health(select_workers()))


class Queues(APIView):
    @extend_schema(operation_id="queues", responses={200: s.QueueSerializer(many=True), **ERRORS},
                   summary="Messages and samples waiting in each worker's queue")
    def get(self, request: Request) -> Response:
        require(request, "workers_app.view_worker")
        stats = queue_stats(select_workers())
        return Response([{"worker": name, **counts} for name, counts in stats.items()])


class Progress(APIView):
    @extend_schema(operation_id="progress", parameters=[s.RunFilterSerializer],
                   responses={200: s.ProgressSerializer, **ERRORS, **NO_RUN},
                   summary="Outcomes stored per worker in a run (the current one unless named) against its samples")
    def get(self, request: Request) -> Response:
        require(request, "workers_app.view_worker")
        scope = checked(s.RunFilterSerializer, request.query_params.dict())
        return Response(fleet_progress(select_workers(), run_of(scope)))


class Costs(APIView):
    @extend_schema(operation_id="costs", parameters=[s.CostFilterSerializer],
                   responses={200: s.CostTotalSerializer(many=True), **ERRORS, **NO_RUN},
                   summary="Cost, cache hits and money saved per annotator and domain, over the outcomes of a run "
                           "(the current one unless named)")
    def get(self, request: Request) -> Response:
        require(request, "workers_app.view_sample")
        scope = checked(s.CostFilterSerializer, request.query_params.dict())
        run = run_of(scope)
        return Response(s.CostTotalSerializer(cost_totals(run=run, **scope), many=True).data)


class FilteredList(ListAPIView):
    """A paginated list of one model, filtered by a query serializer, behind one permission."""

    pagination_class = CheckedPages
    permission: str
    filters: type[drf.Serializer]

    def list(self, request: Request, *args, **kwargs) -> Response:
        require(request, self.permission)
        self.scope = checked(self.filters, request.query_params.dict())
        return super().list(request, *args, **kwargs)


def _listing(operation_id: str, filters: type[drf.Serializer], serializer: type[drf.Serializer], summary: str):
    named_run = NO_RUN if issubclass(filters, s.RunFilterSerializer) else {}
    return extend_schema_view(get=extend_schema(operation_id=operation_id, summary=summary,
                                                parameters=[filters] if filters().fields else [],
                                                responses={200: serializer(many=True), **ERRORS, **named_run}))


@_listing("alerts_list", s.AlertFilterSerializer, s.AlertSerializer, "Alerts, newest first (open=true: the open ones)")
class AlertList(FilteredList):
    serializer_class = s.AlertSerializer
    permission = "workers_app.view_alert"
    filters = s.AlertFilterSerializer

    def get_queryset(self) -> QuerySet[Alert]:
        rows = Alert.objects.select_related("worker__annotator", "worker__domain")
        if self.scope.get("open") is not None:
            rows = rows.filter(resolved_at__isnull=self.scope["open"])
        if "kind" in self.scope:
            rows = rows.filter(kind=self.scope["kind"])
        return rows.order_by("-opened_at", "-id")


@_listing("audit_list", s.AuditFilterSerializer, s.AuditLogSerializer, "The audit log, newest first")
class AuditList(FilteredList):
    serializer_class = s.AuditLogSerializer
    permission = "audit.view_auditlog"
    filters = s.AuditFilterSerializer

    def get_queryset(self) -> QuerySet[AuditLog]:
        rows = AuditLog.objects.annotate(repeated=Coalesce("tally__count", 1))
        for name in ("action", "result"):
            if name in self.scope:
                rows = rows.filter(**{name: self.scope[name]})
        for name in ("actor", "target"):
            if name in self.scope:
                rows = rows.filter(**{f"{name}__icontains": self.scope[name]})
        if "since" in self.scope:
            rows = rows.filter(at__gte=self.scope["since"])
        return rows.order_by("-at", "-id")


@_listing("samples_list", s.SampleFilterSerializer, s.SampleSerializer, "Samples of the corpus")
class SampleList(FilteredList):
    serializer_class = s.SampleSerializer
    permission = "workers_app.view_sample"
    filters = s.SampleFilterSerializer

    def get_queryset(self) -> QuerySet[Sample]:
        rows = Sample.objects.all()
        if "corpus" in self.scope:
            rows = rows.filter(corpus_id=self.scope["corpus"])
        if "search" in self.scope:
            rows = rows.filter(text__icontains=self.scope["search"]) | rows.filter(
                external_id__icontains=self.scope["search"])
        return rows.order_by("id")


@_listing("outcomes_list", s.OutcomeFilterSerializer, s.OutcomeSerializer,
          "Stored outcomes of a run (the current one unless named), filtered like the annotation browser")
class OutcomeList(FilteredList):
    serializer_class = s.OutcomeSerializer
    permission = "workers_app.view_sample"
    filters = s.OutcomeFilterSerializer

    def get_queryset(self) -> QuerySet[Outcome]:
        rows = Outcome.objects.select_related("run", "sample", "annotator", "domain").filter(run=run_of(self.scope))
        lookups = {"annotator": "annotator__number", "domain": "domain__slug", "status": "status",
                   "sample": "sample__external_id", "reason": "reason"}
        return rows.filter(**{lookups[k]: v for k, v in self.scope.items() if k in lookups}).order_by("id")


@_listing("corpora_list", s.PageOnlySerializer, s.CorpusSerializer, "Imported corpora, newest first")
class CorpusList(FilteredList):
    serializer_class = s.CorpusSerializer
    permission = "workers_app.view_corpus"
    filters = s.PageOnlySerializer

    def get_queryset(self) -> QuerySet[Corpus]:
        return Corpus.objects.order_by("-imported_at", "-id")


class CorpusImport(APIView):
    parser_classes = [MultiPartParser]

    @extend_schema(operation_id="corpora_import", request={"multipart/form-data": s.CorpusImportSerializer},
                   responses={201: s.ImportResultSerializer, 200: s.ImportResultSerializer, **ERRORS,
                              400: OpenApiResponse(s.ErrorSerializer, description="the upload is not readable"),
                              413: OpenApiResponse(description="larger than the upload limit"),
                              415: OpenApiResponse(s.ErrorSerializer, description="not multipart/form-data")},
                   summary="Import a corpus file: every row is checked first; any problem and nothing is imported",
                   description="422 lists each problem with file, sheet, row and field (`problems`). 201: imported; "
                               "200: this file was imported before, nothing changed.")
    def post(self, request: Request) -> Response:
        require(request, "workers_app.add_corpus")
        form = checked(s.CorpusImportSerializer, request.data)
        upload = form["file"]
        sheets = [name.strip() for name in form.get("sheets", "").split(",") if name.strip()] or None
        with upload_on_disk(upload) as saved:
            try:
                report = import_corpus(saved, actor=acting(request), sheets=sheets,
                                       display_name=Path(upload.name or "upload").name[:255],
                                       id_column=form.get("id_column") or None,
                                       text_column=form.get("text_column") or None,
                                       skip_invalid=form["skip_invalid"], allow_cut_cells=form["allow_cut_cells"],
                                       client_address=client_address(request))
            except ImportRejected as exc:
                raise ApiError(422, "invalid_file", f"file: {len(exc.problems)} problem(s); nothing was imported",
                               problems=[str(p) for p in exc.problems[:SHOWN_PROBLEMS]]) from None
        body = {"corpus": s.CorpusSerializer(report.corpus).data, "summary": report.summary(),
                "imported": report.imported, "already_present": report.already_present,
                "already_imported": report.already_imported, "skipped": [str(p) for p in report.skipped],
                "warnings": [str(p) for p in report.warnings]}
        return Response(body, status=200 if report.already_imported else 201)


@_listing("archives_list", s.PageOnlySerializer, s.ArchiveSerializer, "Archives, newest first")
class ArchiveList(FilteredList):
    serializer_class = s.ArchiveSerializer
    permission = "admin_ops.view_archive"
    filters = s.PageOnlySerializer

    def get_queryset(self) -> QuerySet[Archive]:
        return Archive.objects.order_by("-created_at", "-id")


class ArchiveCreate(APIView):
    @extend_schema(operation_id="archives_create", request={"application/json": s.NewArchiveSerializer.SCHEMA},
                   responses={201: s.ArchiveSerializer, **ERRORS, **JSON_BODY,
                              409: OpenApiResponse(s.ErrorSerializer, description="an archive of that name exists")},
                   summary="Archive the workbooks, outcomes, malformed log, audit log and state as NAME.tar.gz")
    def post(self, request: Request) -> Response:
        require(request, "admin_ops.create_archive")
        name = checked(s.NewArchiveSerializer, request.data)["name"]
        try:
            archive = create_archive(name, actor=acting(request))
        except ArchiveError as exc:
            raise ApiError(409, "archive_refused", f"name: {exc}") from None
        return Response(s.ArchiveSerializer(archive).data, status=201)


ARCHIVE_NAME = OpenApiParameter("name", str, OpenApiParameter.PATH, pattern=s.HOST_PATTERN)
NO_ARCHIVE = {404: OpenApiResponse(s.ErrorSerializer, description="no archive of that name, or its file is gone")}


def _archive(name: str) -> Archive:
    archive = Archive.objects.filter(name=name).first()
    if archive is None:
        raise ApiError(404, "unknown_archive", f"no archive named {name[:100]!r}")
    return archive


class ArchiveVerify(APIView):
    @extend_schema(operation_id="archives_verify", request=None, parameters=[ARCHIVE_NAME],
                   responses={200: s.VerificationSerializer, **ERRORS, **NO_ARCHIVE},
                   summary="Recompute every member's checksum; each problem names its member")
    def post(self, request: Request, name: str) -> Response:
        require(request, "admin_ops.verify_archive")
        no_body(request)
        result = verify_and_record(_archive(name), actor=acting(request))
        return Response({"ok": result.ok, "problems": result.problems})


class ArchiveDownload(APIView):
    @extend_schema(operation_id="archives_download", parameters=[ARCHIVE_NAME],
                   responses={(200, "application/gzip"): OpenApiTypes.BINARY, **ERRORS, **NO_ARCHIVE},
                   summary="The archive file")
    def get(self, request: Request, name: str) -> FileResponse:
        require(request, "admin_ops.create_archive")  # as in the admin: an archive holds everything
        archive = _archive(name)
        try:
            handle = (settings.ARCHIVES_DIR / archive.file_name).open("rb")
        except FileNotFoundError:
            raise ApiError(404, "unknown_archive", f"the file of archive {archive.name!r} is missing") from None
        return FileResponse(handle, as_attachment=True, filename=archive.file_name, content_type="application/gzip")


JOB = OpenApiParameter("job", OpenApiTypes.UUID, OpenApiParameter.PATH)
NO_JOB = {404: OpenApiResponse(s.ErrorSerializer, description="no consolidation job with that id")}


def _job(job: str) -> dict:
    found = consolidation_status(job)
    if found is None:
        raise ApiError(404, "unknown_job", f"no consolidation job {job}")
    return found


class ConsolidationStart(APIView):
    @extend_schema(operation_id="consolidations_start", request=None, parameters=[s.ConsolidationFilterSerializer],
                   responses={202: s.JobSerializer, **ERRORS,
                              404: OpenApiResponse(s.ErrorSerializer, description="no such run or reference set")},
                   summary="Start a consolidation of a run (one workbook: its Run sheet, labels per domain, "
                           "agreement, review list)",
                   description="Runs on the control worker; follow it with GET /api/v1/consolidations/{job}. The "
                               "run is the current one unless `run` names one; the workbook goes to its "
                               "consolidated folder.")
    def post(self, request: Request) -> Response:
        require(request, "admin_ops.consolidate")
        no_body(request)
        scope = checked(s.ConsolidationFilterSerializer, request.query_params.dict())
        reference = _reference(scope.pop("reference")) if "reference" in scope else None
        run = run_of(scope)
        return Response(_job(start_consolidation(run, actor=acting(request), reference=reference)), status=202)


class ConsolidationStatus(APIView):
    @extend_schema(operation_id="consolidations_status", parameters=[JOB],
                   responses={200: s.JobSerializer, **ERRORS, **NO_JOB}, summary="A consolidation job's status")
    def get(self, request: Request, job: uuid.UUID) -> Response:
        require(request, "admin_ops.consolidate")
        return Response(_job(str(job)))


class ConsolidationDownload(APIView):
    @extend_schema(operation_id="consolidations_download", parameters=[JOB],
                   responses={(200, XLSX): OpenApiTypes.BINARY, **ERRORS, **NO_JOB,
                              409: OpenApiResponse(s.ErrorSerializer, description="the job has not finished")},
                   summary="The consolidated workbook of a finished job")
    def get(self, request: Request, job: uuid.UUID) -> FileResponse:
        require(request, "admin_ops.consolidate")
        found = _job(str(job))
        if found["status"] != "done":
            raise ApiError(409, "not_ready", f"job: the consolidation is {found['status']}")
        path = consolidation_workbook(found)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise ApiError(404, "unknown_job", f"the workbook of job {job} is gone") from None
        return FileResponse(handle, as_attachment=True, filename=path.name, content_type=XLSX)


@_listing("review_list", s.RunFilterSerializer, s.ReviewItemSerializer,
          "The clinical review queue, highest risk first: any LEVEL_4, urgency labels two or more levels apart, "
          "annotators who disagree or a label its model was unsure of (where a domain sets those thresholds), "
          "or an answer that reads as a refusal; with each annotator's urgency label in a run (the current one "
          "unless named)")
class ReviewList(FilteredList):
    serializer_class = s.ReviewItemSerializer
    permission = "admin_ops.consolidate"
    filters = s.RunFilterSerializer

    def get_queryset(self) -> list[dict]:
        if getattr(self, "swagger_fake_view", False):
            return []  # drf-spectacular calls this to describe the view: no reading for that
        return review_items(run_of(self.scope))


NO_REFERENCE = {404: OpenApiResponse(s.ErrorSerializer, description="no reference set of that name")}


def _reference(name: str):
    try:
        return reference_by_name(name)
    except UnknownReference as exc:
        raise ApiError(404, "unknown_reference", f"reference: {exc}") from None


class References(APIView):
    parser_classes = [MultiPartParser]

    @extend_schema(operation_id="references_list", responses={200: s.ReferenceSetSerializer(many=True), **ERRORS},
                   summary="Every reference set with its provenance, value map and counts")
    def get(self, request: Request) -> Response:
        require(request, "workers_app.view_referenceset")
        return Response([summary.as_dict() for summary in reference_summaries()])

    @extend_schema(operation_id="references_import", request={"multipart/form-data": s.ReferenceImportSerializer},
                   responses={201: s.ReferenceImportResultSerializer, 200: s.ReferenceImportResultSerializer,
                              **ERRORS, 413: OpenApiResponse(description="larger than the upload limit"),
                              415: OpenApiResponse(s.ErrorSerializer, description="not multipart/form-data")},
                   summary="Import a reference set: every row is checked first; any problem and nothing is imported",
                   description="Wide form: `label_columns` (DOMAIN=COLUMN per line); long form: `domain_column` and "
                               "`value_column`; `map` holds DOMAIN:VALUE=CODE per line. 422 lists each problem "
                               "(`problems`) by file, row and field. 201: imported; 200: the same import was made "
                               "before, nothing changed.")
    def post(self, request: Request) -> Response:
        require(request, "workers_app.add_referenceset")
        form = checked(s.ReferenceImportSerializer, request.data)
        upload = form["file"]
        with upload_on_disk(upload) as saved:
            try:
                layout, value_map = layout_from_texts(
                    id_column=form.get("id_column"), label_columns=[form.get("label_columns", "")],
                    domain_column=form.get("domain_column"), value_column=form.get("value_column"),
                    rater_column=form.get("rater_column"), sheets=[form.get("sheets", "")],
                    maps=[form.get("map", "")])
                report = import_reference(
                    saved, name=form["name"], layout=layout, value_map=value_map, actor=acting(request),
                    provenance=Provenance(**{name: form[name] for name in PROVENANCE_FIELDS}),
                    display_name=Path(upload.name or "upload").name[:255], client_address=client_address(request))
            except ReferenceRefused as exc:
                raise ApiError(422, "invalid_file", f"file: {len(exc.problems)} problem(s); nothing was imported",
                               problems=exc.problems[:SHOWN_PROBLEMS]) from None
        [summary] = reference_summaries([report.reference_set])
        body = {"reference": summary.as_dict(), "summary": report.summary(),
                "already_imported": report.already_imported}
        return Response(body, status=200 if report.already_imported else 201)


class ReferenceDetail(APIView):
    @extend_schema(operation_id="references_delete", parameters=[
        OpenApiParameter("name", str, OpenApiParameter.PATH, pattern=s.REFERENCE_PATTERN)],
        responses={204: None, **ERRORS, **NO_REFERENCE,
                   409: OpenApiResponse(s.ErrorSerializer, description="the set is kept by the console")},
        summary="Delete a reference set and its labels")
    def delete(self, request: Request, name: str) -> Response:
        require(request, "workers_app.delete_referenceset")
        try:
            delete_reference(_reference(name), actor=acting(request), client_address=client_address(request))
        except ReferenceRefused as exc:
            raise ApiError(409, "reference_refused", "; ".join(exc.problems)) from None
        return Response(status=204)


class Quality(APIView):
    @extend_schema(operation_id="quality", parameters=[s.QualityFilterSerializer],
                   responses={200: s.QualitySerializer, **ERRORS,
                              404: OpenApiResponse(s.ErrorSerializer, description="no such run or reference set")},
                   summary="A run's labels (the current run unless named) against a reference set: per domain and "
                           "annotator, and the majority vote and Dawid–Skene, with 95 % bootstrap intervals")
    def get(self, request: Request) -> Response:
        require(request, "workers_app.view_quality")
        scope = checked(s.QualityFilterSerializer, request.query_params.dict())
        reference_set = _reference(scope.pop("reference"))
        return Response(quality_document(run_quality(run_of(scope), reference_set)))
