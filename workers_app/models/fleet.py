from __future__ import annotations

from django.db import models

from .catalogue import Annotator, Domain


class Worker(models.Model):
    """One (annotator, domain) worker: what staff want (desired) and what its host's agent saw (observed)."""

    class Desired(models.TextChoices):
        RUNNING = "running", "running"
        PAUSED = "paused", "paused"
        STOPPED = "stopped", "stopped"

    class Observed(models.TextChoices):
        STOPPED = "stopped", "stopped"
        STARTING = "starting", "starting"
        RUNNING = "running", "running"
        PAUSED = "paused", "paused"
        STOPPING = "stopping", "stopping"
        EXITED = "exited", "exited"
        BACKOFF = "backoff", "backoff"
        FATAL = "fatal", "fatal"
        STALLED = "stalled", "stalled"

    annotator = models.ForeignKey(Annotator, on_delete=models.CASCADE, related_name="workers")
    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="workers")
    # Placement: the agent of this host runs the worker. While a move is under way, the old host's agent stops
    # its process and hands the worker over; the new host's agent starts it only then (or once the old host is lost).
    host = models.CharField(max_length=100)
    moving_from = models.CharField(max_length=100, blank=True)
    desired_state = models.CharField(max_length=10, choices=Desired.choices, default=Desired.STOPPED)
    observed_state = models.CharField(max_length=10, choices=Observed.choices, default=Observed.STOPPED)
    # Raised by each restart request; the agent restarts a process started under an older generation.
    generation = models.PositiveIntegerField(default=0)
    force_stop = models.BooleanField(default=False)
    pid = models.PositiveIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    last_heartbeat = models.DateTimeField(null=True, blank=True)
    memory_rss = models.PositiveBigIntegerField(null=True, blank=True)
    restarts = models.PositiveIntegerField(default=0)
    quick_failures = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["annotator__number", "domain__position"]
        constraints = [models.UniqueConstraint(fields=["annotator", "domain"], name="one_worker_per_pair")]
        permissions = [
            ("launch_worker", "Can launch workers"),
            ("pause_worker", "Can pause workers"),
            ("resume_worker", "Can resume workers"),
            ("stop_worker", "Can stop workers"),
            ("restart_worker", "Can restart workers"),
            ("flush_worker", "Can flush workers' workbooks"),
            ("move_worker", "Can move workers to another host"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return f"annotator_{self.annotator.number}_{self.domain.slug}"

    @property
    def node_name(self) -> str:
        return f"{self.name}@{self.host}"


class WorkerEvent(models.Model):
    """Every state transition of a worker: what, why and who."""

    worker = models.ForeignKey(Worker, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    from_state = models.CharField(max_length=10, blank=True)
    to_state = models.CharField(max_length=10)
    reason = models.CharField(max_length=300, blank=True)
    actor = models.CharField(max_length=150)

    class Meta:
        ordering = ["-at", "-id"]


class Host(models.Model):
    """A machine that runs a fleet agent; the agent beats here, so a silent host is seen as lost."""

    name = models.CharField(max_length=100, unique=True)
    last_seen = models.DateTimeField(null=True, blank=True)
    agent_pid = models.PositiveIntegerField(null=True, blank=True)
    agent_started_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Installation(models.Model):
    """The one row that names this install (settings.INSTALL_ID): every host of the install must carry the same id,
    since its Redis keys live under it (see workers_app.fleet.install)."""

    install_id = models.CharField(max_length=32, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_on_host = models.CharField(max_length=100, blank=True)

    def __str__(self) -> str:
        return self.install_id
