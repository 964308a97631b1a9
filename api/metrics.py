"""Prometheus metrics read at scrape time: 30 worker processes cannot share in-process counters, so every value
comes from Redis (one pipelined read) and the database (a few grouped queries) when Prometheus asks. Outcome
counts and latencies are of the current run (annotation_current_run names it)."""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections import defaultdict
from collections.abc import Iterator

from django.conf import settings
from django.db.models import Count, IntegerField, Q, Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from workers_app.engine.batch_requests import batches_in_flight
from workers_app.engine.gold import gold_scores
from workers_app.engine.live import Live, read_live
from workers_app.engine.ratelimit import counters_key
from workers_app.fleet.rows import key_of, select_workers
from workers_app.models import Alert, Annotator, Outcome, Run, Worker
from workers_app.redis_client import get_redis
from workers_app.runs.current import current_run

WORKER_LABELS = ["worker", "annotator", "domain", "host"]
# Bucket bounds of the LLM latency histogram, in milliseconds (an LLM call takes 0.1 s to a minute).
LATENCY_BOUNDS_MS = (100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000)
# Per-annotator counter fields in counters:<n> (engine.ratelimit.counters_key), besides requests:<status>.
COUNTERS = {"tokens_in": ("annotation_llm_tokens_in", "prompt tokens sent to the LLM"),
            "tokens_out": ("annotation_llm_tokens_out", "completion tokens the LLM answered"),
            "retries": ("annotation_llm_retries", "LLM requests that were a retry of the same sample"),
            "ratelimit_waits": ("annotation_ratelimit_waits", "requests the shared rate limit held back")}


class FleetCollector:
    def collect(self) -> Iterator[Metric]:
        workers = select_workers()
        numbers = list(Annotator.objects.order_by("number").values_list("number", flat=True))
        run = current_run()
        live, counters = self._redis(workers, numbers)
        yield self._run(run)
        yield from self._worker_metrics(workers, live)
        yield from self._annotator_counters(workers, live, numbers, counters)
        yield self._latency(numbers, run)
        yield from self._gold(run)
        yield from self._batches()
        yield self._alerts()

    @staticmethod
    def _redis(workers: list[Worker], numbers: list[int]) -> tuple[list[Live], list[dict]]:
        live = read_live([key_of(w) for w in workers], time.time())
        pipe = get_redis().pipeline(transaction=False)
        for number in numbers:
            pipe.hgetall(counters_key(number))
        return live, pipe.execute()

    @staticmethod
    def _worker_metrics(workers: list[Worker], live: list[Live]) -> Iterator[Metric]:
        state_labels = [*WORKER_LABELS, "state"]
        observed = GaugeMetricFamily("annotation_worker_observed_state", "1 for the state its agent last saw",
                                     labels=state_labels)
        desired = GaugeMetricFamily("annotation_worker_desired_state", "1 for the state staff asked for",
                                    labels=state_labels)
        queue = GaugeMetricFamily("annotation_worker_queue_messages", "messages waiting in its queue",
                                  labels=WORKER_LABELS)
        done = GaugeMetricFamily("annotation_worker_outcomes", "outcomes it stored, by status",
                                 labels=[*WORKER_LABELS, "status"])
        consuming = GaugeMetricFamily("annotation_worker_consuming", "1 if its heartbeat says it takes work",
                                      labels=WORKER_LABELS)
        age = GaugeMetricFamily("annotation_worker_heartbeat_age_seconds", "seconds since its last heartbeat "
                                "(absent when it never beat or its heartbeat expired)", labels=WORKER_LABELS)
        rss = GaugeMetricFamily("annotation_worker_rss_bytes", "resident memory at its last heartbeat",
                                labels=WORKER_LABELS)
        restarts = GaugeMetricFamily("annotation_worker_restarts", "restarts by its agent", labels=WORKER_LABELS)
        now = time.time()
        for worker, state in zip(workers, live, strict=True):
            labels = [worker.name, str(worker.annotator.number), worker.domain.slug, worker.host]
            for value in Worker.Observed.values:
                observed.add_metric([*labels, value], float(worker.observed_state == value))
            for value in Worker.Desired.values:
                desired.add_metric([*labels, value], float(worker.desired_state == value))
            queue.add_metric(labels, state.queue)
            done.add_metric([*labels, Outcome.Status.OK], state.ok)
            done.add_metric([*labels, Outcome.Status.MALFORMED], state.malformed)
            consuming.add_metric(labels, float(bool(state.consuming)))
            restarts.add_metric(labels, worker.restarts)
            if state.beat_at is not None:
                age.add_metric(labels, round(now - state.beat_at, 3))
            if state.rss:
                rss.add_metric(labels, state.rss)
        yield from (observed, desired, queue, done, consuming, age, rss, restarts)

    @staticmethod
    def _annotator_counters(workers: list[Worker], live: list[Live], numbers: list[int],
                            counters: list[dict]) -> Iterator[Metric]:
        annotations = CounterMetricFamily("annotation_annotations", "outcomes stored, by status",
                                          labels=["annotator", "status"])
        totals: dict[tuple[str, str], int] = defaultdict(int)
        for worker, state in zip(workers, live, strict=True):
            totals[str(worker.annotator.number), Outcome.Status.OK] += state.ok
            totals[str(worker.annotator.number), Outcome.Status.MALFORMED] += state.malformed
        for (number, status), value in sorted(totals.items()):
            annotations.add_metric([number, status], value)
        yield annotations
        requests = CounterMetricFamily("annotation_llm_requests", "LLM requests by HTTP status (error: no answer)",
                                       labels=["annotator", "status"])
        families = {field: CounterMetricFamily(name, text, labels=["annotator"])
                    for field, (name, text) in COUNTERS.items()}
        for number, fields in zip(numbers, counters, strict=True):
            for field, value in sorted(fields.items()):
                if field.startswith("requests:"):
                    requests.add_metric([str(number), field.removeprefix("requests:")], int(value))
            for field, family in families.items():
                family.add_metric([str(number)], int(fields.get(field, 0)))
        yield requests
        yield from families.values()

    @staticmethod
    def _run(run: Run) -> Metric:
        family = GaugeMetricFamily("annotation_current_run", "1 for the run the fleet works on; the outcome "
                                   "counts and latencies are of its outcomes", labels=["run"])
        family.add_metric([run.name], 1)
        return family

    @staticmethod
    def _latency(numbers: list[int], run: Run) -> Metric:
        """One grouped query: cumulative bucket counts and the sum per annotator, from the outcomes of ``run``."""
        buckets = {f"le_{bound}": Count("id", filter=Q(latency_ms__lte=bound)) for bound in LATENCY_BOUNDS_MS}
        rows = (Outcome.objects.filter(run=run).values("annotator__number")
                .annotate(total=Count("id"), sum_ms=Sum("latency_ms", output_field=IntegerField()), **buckets)
                .order_by())
        family = HistogramMetricFamily("annotation_llm_latency_seconds", "latency of the answer each stored "
                                       "outcome came from", labels=["annotator"])
        by_number = {row["annotator__number"]: row for row in rows}
        for number in numbers:
            row = by_number.get(number, {"total": 0, "sum_ms": 0})
            cumulative = [(str(bound / 1000), row.get(f"le_{bound}", 0)) for bound in LATENCY_BOUNDS_MS]
            family.add_metric([str(number)], [*cumulative, ("+Inf", row["total"])], (row["sum_ms"] or 0) / 1000)
        return family

    @staticmethod
    def _gold(run: Run) -> Iterator[Metric]:
        """Each annotator's rolling accuracy on the current run's gold items (absent before its first gold answer,
        and for a run without gold checks) and how many answers it rests on."""
        accuracy = GaugeMetricFamily("annotation_gold_accuracy", "share right of the annotator's last gold "
                                     "answers in the current run (its window)", labels=["annotator"])
        answers = GaugeMetricFamily("annotation_gold_answers", "gold answers the accuracy rests on",
                                    labels=["annotator"])
        for number, score in gold_scores(run).items():
            answers.add_metric([str(number)], score.items)
            if score.accuracy is not None:
                accuracy.add_metric([str(number)], score.accuracy)
        yield from (accuracy, answers)

    @staticmethod
    def _batches() -> Iterator[Metric]:
        """Batch mode: per worker with any, its provider batches not ended, their requests, the oldest one's age,
        and the requests waiting for a batch."""
        labels = ["annotator", "domain"]
        batches = GaugeMetricFamily("annotation_batches_in_flight", "provider batches submitted (or being "
                                    "submitted) and not ended", labels=labels)
        requests = GaugeMetricFamily("annotation_batch_requests_in_flight", "requests in those batches",
                                     labels=labels)
        age = GaugeMetricFamily("annotation_batch_oldest_age_seconds", "age of the oldest batch not ended",
                                labels=labels)
        pending = GaugeMetricFamily("annotation_batch_requests_pending", "samples taken from the queue that wait "
                                    "for a batch", labels=labels)
        now = timezone.now()
        for (number, slug), entry in sorted(batches_in_flight().items()):
            key = [str(number), slug]
            batches.add_metric(key, entry.batches)
            requests.add_metric(key, entry.requests)
            pending.add_metric(key, entry.pending)
            if entry.oldest is not None:
                age.add_metric(key, round((now - entry.oldest).total_seconds(), 3))
        yield from (batches, requests, age, pending)

    @staticmethod
    def _alerts() -> Metric:
        family = GaugeMetricFamily("annotation_alerts_open", "open alerts by kind", labels=["kind"])
        for row in Alert.objects.filter(resolved_at__isnull=True).values("kind").annotate(n=Count("id")).order_by():
            family.add_metric([row["kind"]], row["n"])
        return family


REGISTRY = CollectorRegistry(auto_describe=False)
REGISTRY.register(FleetCollector())


def _allowed(request: HttpRequest) -> bool | None:
    """True: let in; False: a wrong token (401); None: no token and not from an allowed network (403)."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        scheme, _, given = header.partition(" ")
        return bool(settings.METRICS_TOKEN) and scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), settings.METRICS_TOKEN.encode())
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return None
    return True if any(address in ipaddress.ip_network(net, strict=False) for net in settings.METRICS_ALLOW) else None


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    allowed = _allowed(request)
    if allowed is False:
        return JsonResponse({"error": "invalid_token", "detail": "Authorization: the metrics token is not valid"},
                            status=401, headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    if allowed is None:
        return JsonResponse({"error": "not_allowed", "detail": "send Authorization: Bearer <METRICS_TOKEN>, or "
                             "scrape from a network in METRICS_ALLOW"}, status=403)
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
