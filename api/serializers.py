"""What the API takes and gives: input serializers validate, output serializers document the schema."""

from __future__ import annotations

from django.core.validators import RegexValidator
from rest_framework import serializers

from admin_ops.models import Archive
from audit.models import AuditLog
from workers_app.models import Alert, Corpus, Outcome, ReferenceSet, Sample
from workers_app.models.reference import REFERENCE_NAME
from workers_app.models.runs import RUN_NAME

from .fields import StrictBooleanField, StrictCharField, StrictIntegerField

NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"
WORKER_PATTERN = r"^annotator_[0-9]{1,9}_[A-Za-z0-9_-]{1,50}$"
HOST_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"


def refuse_unknown_fields(serializer: serializers.Serializer, data: object) -> None:
    """A JSON body with a field the endpoint does not know is refused, naming it (a typo must not pass silently)."""
    if isinstance(data, dict):
        for name in data:
            if name not in serializer.fields:
                raise serializers.ValidationError({name: f"unknown field; the fields are {', '.join(serializer.fields)}"})


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="a stable code, e.g. unknown_worker, invalid_domain, busy")
    detail = serializers.CharField(help_text="what was wrong, naming the field")


# -- selections and actions


class SelectionSerializer(serializers.Serializer):
    """Exactly one way of choosing workers: one worker, an annotator and/or a domain, or all."""

    worker = StrictCharField(required=False, max_length=100, help_text="annotator_N_domain")
    annotator = StrictIntegerField(required=False, min_value=1, max_value=10_000)
    domain = StrictCharField(required=False, max_length=50)
    all = StrictBooleanField(required=False, help_text="true: every worker")

    def validate(self, attrs: dict) -> dict:
        kinds = [kind for kind, present in (("worker", "worker" in attrs),
                                            ("annotator/domain", "annotator" in attrs or "domain" in attrs),
                                            ("all", attrs.get("all") is True)) if present]
        if "all" in attrs and attrs["all"] is not True:
            raise serializers.ValidationError({"all": "give all: true, or leave it out"})
        if len(kinds) != 1:
            raise serializers.ValidationError(
                "choose workers with exactly one of: worker, annotator and/or domain, all: true"
                + (f" (got {' and '.join(kinds)})" if kinds else ""))
        return attrs


class ActionSerializer(SelectionSerializer):
    force = StrictBooleanField(required=False, help_text="stop and restart: kill at once instead of a warm stop")
    to_host = StrictCharField(required=False, max_length=100, validators=[RegexValidator(HOST_PATTERN)],
                              help_text="move: the host whose agent will run the workers")

    def to_internal_value(self, data):
        refuse_unknown_fields(self, data)
        return super().to_internal_value(data)


OPTION_FIELDS = ("force", "to_host")
OPTION_SCHEMAS = {
    "force": {"type": "boolean", "description": "kill at once instead of a warm stop"},
    "to_host": {"type": "string", "pattern": HOST_PATTERN, "maxLength": 100,
                "description": "the host whose agent will run the workers"},
}
SELECTIONS = (
    ({"worker": {"type": "string", "pattern": WORKER_PATTERN, "maxLength": 100,
                 "description": "one worker: annotator_N_domain"}}, {"required": ["worker"]}),
    ({"annotator": {"type": "integer", "minimum": 1, "maximum": 10_000},
      "domain": {"type": "string", "pattern": NAME_PATTERN, "minLength": 1, "maxLength": 50}},
     {"anyOf": [{"required": ["annotator"]}, {"required": ["domain"]}]}),
    ({"all": {"type": "boolean", "enum": [True], "description": "every worker"}}, {"required": ["all"]}),
)


def action_body_schema(options: tuple[str, ...], required: tuple[str, ...]) -> dict:
    """One of the three selections, each with exactly the action's options and nothing else."""
    variants = []
    for properties, rule in SELECTIONS:
        variant = {"type": "object", "properties": {**properties, **{o: OPTION_SCHEMAS[o] for o in options}},
                   "additionalProperties": False, **rule}
        if required:
            variant = {**variant, "required": [*variant.get("required", []), *required]}
        variants.append(variant)
    return {"oneOf": variants}


class WorkerResultSerializer(serializers.Serializer):
    worker = serializers.CharField()
    ok = serializers.BooleanField()
    state = serializers.CharField()
    message = serializers.CharField()
    detail = serializers.DictField()


class ActionResultSerializer(serializers.Serializer):
    action = serializers.CharField()
    ok = serializers.BooleanField(help_text="true when every worker's result is ok")
    results = WorkerResultSerializer(many=True)


class BusySerializer(ErrorSerializer):
    results = WorkerResultSerializer(many=True)


# -- runs


class RunFilterSerializer(serializers.Serializer):
    """Which run's outcomes to read: ``run`` (a name; one that names no run is 404), the current run when left
    out."""

    run = serializers.RegexField(RUN_NAME.regex.pattern, required=False, max_length=40,
                                 error_messages={"invalid": RUN_NAME.message},
                                 help_text="a run's name; left out: the current run")


# -- fleet reads


class WorkerFilterSerializer(serializers.Serializer):
    annotator = serializers.IntegerField(required=False, min_value=1, max_value=10_000)
    domain = serializers.RegexField(NAME_PATTERN, required=False, max_length=50)


class CheckSerializer(serializers.Serializer):
    name = serializers.CharField()
    ok = serializers.BooleanField()
    reason = serializers.CharField()


class WorkerStatusSerializer(serializers.Serializer):
    worker = serializers.CharField()
    annotator = serializers.IntegerField()
    domain = serializers.CharField()
    run = serializers.CharField(help_text="the current run: the fleet works on it and ok/malformed count its outcomes")
    in_run = serializers.BooleanField(help_text="the current run takes this worker's annotator and domain")
    host = serializers.CharField()
    node = serializers.CharField()
    desired = serializers.CharField()
    observed = serializers.CharField()
    restarts = serializers.IntegerField()
    last_error = serializers.CharField(allow_blank=True)
    healthy = serializers.BooleanField()
    heartbeat_age = serializers.FloatField(allow_null=True, help_text="seconds since its last heartbeat")
    consuming = serializers.BooleanField(help_text="its heartbeat says it takes work from its queue")
    rss_bytes = serializers.IntegerField(allow_null=True)
    pid = serializers.IntegerField(allow_null=True)
    ok = serializers.IntegerField(help_text="outcomes stored in the current run")
    malformed = serializers.IntegerField()
    queue = serializers.IntegerField(help_text="messages waiting in its queue")


class BatchesSerializer(serializers.Serializer):
    in_flight = serializers.IntegerField(help_text="provider batches submitted (or being submitted), not ended")
    requests = serializers.IntegerField(help_text="requests in those batches")
    oldest_age = serializers.FloatField(allow_null=True, help_text="seconds since the oldest of them was recorded")
    pending = serializers.IntegerField(help_text="samples taken from its queue that wait for a batch")


class WorkerDetailSerializer(WorkerStatusSerializer):
    checks = CheckSerializer(many=True)
    batches = BatchesSerializer(allow_null=True, help_text="batch mode: its batches; null for a live annotator "
                                                           "without any")


class WorkerHealthSerializer(serializers.Serializer):
    worker = serializers.CharField()
    healthy = serializers.BooleanField()
    observed = serializers.CharField()
    heartbeat_age = serializers.FloatField(allow_null=True)
    rss = serializers.IntegerField(allow_null=True)
    queue = serializers.IntegerField()
    error_rate = serializers.FloatField()
    checks = CheckSerializer(many=True)


class HealthSerializer(serializers.Serializer):
    healthy = serializers.BooleanField()
    run = serializers.CharField(help_text="the current run, the one the fleet works on")
    workers = WorkerHealthSerializer(many=True)


class QueueSerializer(serializers.Serializer):
    worker = serializers.CharField()
    messages = serializers.IntegerField()
    samples_queued = serializers.IntegerField()


class WorkerProgressSerializer(serializers.Serializer):
    worker = serializers.CharField()
    in_run = serializers.BooleanField(help_text="the run takes this worker's annotator and domain")
    ok = serializers.IntegerField()
    malformed = serializers.IntegerField()
    done = serializers.IntegerField()
    expected = serializers.IntegerField(help_text="the run's samples; 0 when the run does not take this worker")
    remaining = serializers.IntegerField()
    percent = serializers.FloatField()


class ProgressSerializer(serializers.Serializer):
    run = serializers.CharField()
    samples = serializers.IntegerField(help_text="the run's samples")
    done = serializers.IntegerField()
    expected = serializers.IntegerField(help_text="samples x the workers the run takes")
    percent = serializers.FloatField()
    workers = WorkerProgressSerializer(many=True)


# -- records


class PageOnlySerializer(serializers.Serializer):
    """No filters: the list is only paginated."""


class AlertFilterSerializer(serializers.Serializer):
    open = serializers.BooleanField(required=False, allow_null=True, default=None,
                                    help_text="true: only open alerts; false: only resolved ones")
    kind = serializers.RegexField(NAME_PATTERN, required=False, max_length=30)


class AlertSerializer(serializers.ModelSerializer):
    worker = serializers.SerializerMethodField()

    class Meta:
        model = Alert
        fields = ["id", "key", "kind", "worker", "message", "opened_at", "resolved_at"]

    def get_worker(self, alert: Alert) -> str | None:
        return alert.worker.name if alert.worker else None


class AuditFilterSerializer(serializers.Serializer):
    action = serializers.RegexField(NAME_PATTERN, required=False, max_length=64)
    actor = serializers.CharField(required=False, max_length=150)
    target = serializers.CharField(required=False, max_length=255)
    result = serializers.ChoiceField(AuditLog.Result.choices, required=False)
    since = serializers.DateTimeField(required=False)


class AuditLogSerializer(serializers.ModelSerializer):
    repeated = serializers.IntegerField(read_only=True, help_text="how many refusals this row stands for: a "
                                        "refused request counts the rest of its actor's and client's period")

    class Meta:
        model = AuditLog
        fields = ["id", "at", "actor", "action", "target", "parameters", "result", "detail", "duration_ms",
                  "client_address", "repeated"]


class SampleFilterSerializer(serializers.Serializer):
    corpus = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1)
    search = serializers.CharField(required=False, max_length=200, help_text="text or id contains")


class SampleSerializer(serializers.ModelSerializer):
    class Meta:
        model = Sample
        fields = ["id", "external_id", "corpus", "text"]


class OutcomeFilterSerializer(RunFilterSerializer):
    annotator = serializers.IntegerField(required=False, min_value=1, max_value=10_000)
    domain = serializers.RegexField(NAME_PATTERN, required=False, max_length=50)
    status = serializers.ChoiceField(Outcome.Status.choices, required=False)
    sample = serializers.CharField(required=False, max_length=200, help_text="the sample's external id")
    reason = serializers.RegexField(NAME_PATTERN, required=False, max_length=40)


class OutcomeSerializer(serializers.ModelSerializer):
    run = serializers.CharField(source="run.name")
    sample = serializers.CharField(source="sample.external_id")
    annotator = serializers.IntegerField(source="annotator.number")
    domain = serializers.CharField(source="domain.slug")

    class Meta:
        model = Outcome
        fields = ["id", "run", "sample", "annotator", "domain", "status", "labels", "reason", "reason_detail", "raw_answer",
                  "model", "prompt_version", "latency_ms", "prompt_tokens", "completion_tokens", "cache_read_tokens",
                  "cache_write_tokens", "attempts", "cost", "cached", "cached_latency_ms", "confidence", "created_at"]


class CostFilterSerializer(RunFilterSerializer):
    annotator = serializers.IntegerField(required=False, min_value=1, max_value=10_000)
    domain = serializers.RegexField(NAME_PATTERN, required=False, max_length=50)


class CostTotalSerializer(serializers.Serializer):
    annotator = serializers.IntegerField()
    domain = serializers.CharField()
    outcomes = serializers.IntegerField()
    priced = serializers.IntegerField(help_text="outcomes with a known cost (a price and token counts)")
    cost = serializers.DecimalField(max_digits=18, decimal_places=9, help_text="every call of the stored outcomes")
    cached = serializers.IntegerField(help_text="outcomes answered from the response cache")
    hit_rate = serializers.FloatField(allow_null=True)
    saved = serializers.DecimalField(max_digits=18, decimal_places=9,
                                     help_text="what the cached answers cost at the price of the day they were stored")
    currency = serializers.CharField(help_text="the annotator's price currency; empty without a price")
    cache_read_tokens = serializers.IntegerField(
        help_text="of the prompt tokens, those the provider read from its prompt cache (where it reports them)")
    cache_write_tokens = serializers.IntegerField(
        help_text="of the prompt tokens, those the provider wrote to its prompt cache (where it reports them)")


# -- corpora and archives


class CorpusSerializer(serializers.ModelSerializer):
    class Meta:
        model = Corpus
        fields = ["id", "file_name", "sha256", "sheets", "row_count", "imported_by", "imported_at"]


class CorpusImportSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="xlsx, csv (UTF-8) or jsonl")
    sheets = serializers.CharField(required=False, max_length=1000, help_text="xlsx: sheet names, comma separated")
    id_column = serializers.CharField(required=False, max_length=100, help_text="default ID (or Sample_ID)")
    text_column = serializers.CharField(required=False, max_length=100, help_text="default Text")
    skip_invalid = serializers.BooleanField(required=False, default=False,
                                            help_text="import the valid rows and list the skipped ones")
    allow_cut_cells = serializers.BooleanField(required=False, default=False,
                                               help_text="xlsx: accept texts of exactly 32,767 characters")


class ImportResultSerializer(serializers.Serializer):
    corpus = CorpusSerializer()
    summary = serializers.CharField()
    imported = serializers.IntegerField()
    already_present = serializers.IntegerField()
    already_imported = serializers.BooleanField()
    skipped = serializers.ListField(child=serializers.CharField())
    warnings = serializers.ListField(child=serializers.CharField())


class ImportRefusedSerializer(ErrorSerializer):
    problems = serializers.ListField(child=serializers.CharField(), help_text="file, sheet, row and field of each")


class ArchiveSerializer(serializers.ModelSerializer):
    class Meta:
        model = Archive
        fields = ["id", "name", "file_name", "sha256", "size", "counts", "created_at", "created_by", "verified_at",
                  "verify_ok"]


class NewArchiveSerializer(serializers.Serializer):
    name = StrictCharField(max_length=100, validators=[RegexValidator(HOST_PATTERN)])
    SCHEMA = {"type": "object", "additionalProperties": False, "required": ["name"], "properties": {
        "name": {"type": "string", "pattern": HOST_PATTERN, "maxLength": 100,
                 "description": "1-100 letters, digits, '.', '_' or '-', starting with a letter or digit"}}}

    def to_internal_value(self, data):
        refuse_unknown_fields(self, data)
        return super().to_internal_value(data)


class VerificationSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    problems = serializers.ListField(child=serializers.CharField())


class JobSerializer(serializers.Serializer):
    job = serializers.UUIDField()
    status = serializers.ChoiceField(["queued", "running", "done", "failed"])
    started_by = serializers.CharField()
    run = serializers.CharField(allow_null=True, help_text="the run consolidated (null: a job from before runs)")
    review = serializers.IntegerField(allow_null=True, help_text="samples on the Review sheet, when done")
    error = serializers.CharField(allow_blank=True)


class ReviewItemSerializer(serializers.Serializer):
    sample = serializers.CharField(help_text="the sample's external id")
    why = serializers.CharField(help_text="LEVEL_4 given, labels N levels apart, the annotators disagree, an "
                                          "annotator was unsure of its label, an answer reads as a refusal")
    risk = serializers.IntegerField(help_text="orders the queue: 100 for LEVEL_4, 10 per level apart, 4 when the "
                                              "annotators disagree, 2 for low confidence, 1 a refusal")
    status = serializers.CharField(help_text="open, claimed or reviewed")
    urgency = serializers.DictField(child=serializers.CharField(allow_blank=True),
                                    help_text="each annotator's urgency label ('' when missing or malformed)")


# -- reference sets and quality

REFERENCE_PATTERN = REFERENCE_NAME.regex.pattern


class ReferenceImportSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="xlsx, csv (UTF-8) or jsonl; the samples must be imported already")
    name = serializers.RegexField(REFERENCE_PATTERN, max_length=40, error_messages={"invalid": REFERENCE_NAME.message})
    id_column = serializers.CharField(required=False, allow_blank=True, max_length=200,
                                      help_text="the sample id column (default: ID, Sample_ID, …)")
    label_columns = serializers.CharField(required=False, allow_blank=True, max_length=10_000,
                                          help_text="wide form: DOMAIN=COLUMN, one per line")
    domain_column = serializers.CharField(required=False, allow_blank=True, max_length=200,
                                          help_text="long form: the domain column")
    value_column = serializers.CharField(required=False, allow_blank=True, max_length=200,
                                         help_text="long form: the label column (default: label)")
    rater_column = serializers.CharField(required=False, allow_blank=True, max_length=200,
                                         help_text="the rater column, when items have several raters")
    map = serializers.CharField(required=False, allow_blank=True, max_length=200_000,
                                help_text="the value map: DOMAIN:VALUE=CODE, one per line")
    sheets = serializers.CharField(required=False, allow_blank=True, max_length=1000,
                                   help_text="xlsx: sheet names, one per line")
    kind = serializers.ChoiceField(choices=ReferenceSet.Kind.choices, default=ReferenceSet.Kind.EXPERT)
    description = serializers.CharField(required=False, allow_blank=True, max_length=10_000, default="")
    source = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")
    licence = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
    citation = serializers.CharField(required=False, allow_blank=True, max_length=10_000, default="")
    raters = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=100_000, default=None)


class ReferenceSetSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.CharField()
    description = serializers.CharField()
    source = serializers.CharField()
    licence = serializers.CharField()
    citation = serializers.CharField()
    raters_stated = serializers.IntegerField(allow_null=True, help_text="how many raters, as the source says")
    value_map = serializers.DictField(child=serializers.DictField(child=serializers.CharField()))
    file_name = serializers.CharField()
    system = serializers.BooleanField(help_text="kept by the console itself (the adjudicated set)")
    created_by = serializers.CharField()
    created_at = serializers.DateTimeField()
    labels = serializers.IntegerField()
    samples = serializers.IntegerField()
    domains = serializers.DictField(child=serializers.IntegerField(), help_text="samples labelled per domain")
    raters = serializers.IntegerField(help_text="distinct named raters (0: one label per item)")
    most_raters_per_item = serializers.IntegerField()


class ReferenceImportResultSerializer(serializers.Serializer):
    reference = ReferenceSetSerializer()
    summary = serializers.CharField()
    already_imported = serializers.BooleanField()


class QualityFilterSerializer(RunFilterSerializer):
    reference = serializers.RegexField(REFERENCE_PATTERN, max_length=40,
                                       error_messages={"invalid": REFERENCE_NAME.message},
                                       help_text="a reference set's name")


class QualitySerializer(serializers.Serializer):
    run = serializers.CharField()
    bootstrap = serializers.IntegerField()
    reference = serializers.DictField(help_text="the set's name and provenance")
    domains = serializers.ListField(child=serializers.DictField(), help_text=(
        "per domain: rows (each annotator, the majority vote and Dawid–Skene: n, accuracy, macro_f1, kappa, "
        "malformed, refused as {value, ci95: [low, high]}, per_class, confusion, worst, calibration: null or "
        "{n, ece, bins: [{low, high, count, mean_confidence, accuracy}]} for an annotator whose labels have "
        "confidences) and alt_test"))


class ConsolidationFilterSerializer(RunFilterSerializer):
    reference = serializers.RegexField(REFERENCE_PATTERN, required=False, max_length=40,
                                       error_messages={"invalid": REFERENCE_NAME.message},
                                       help_text="a Quality sheet against this reference set (left out: against the "
                                                 "review queue's adjudicated set, once it has labels)")
