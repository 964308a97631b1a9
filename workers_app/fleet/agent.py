"""The fleet agent: one per host, the parent of that host's worker processes.

It forks each worker from itself after Django and Celery are imported (a start costs a fork, not a new
interpreter), learns of every exit by reaping, and reconciles each Worker row's desired state with its
children: start what should run, stop what should not, restart what is of an older generation. The
desired state lives in the database, so nothing a staff member asked for is lost while the agent restarts;
a Redis list only wakes it up early.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, close_old_connections, transaction
from django.db.models import Max, Q
from django.utils import timezone
from redis.exceptions import LockNotOwnedError, RedisError
from setproctitle import setproctitle

from annotation_site.celery import app
from annotation_site.db import close_before_fork, limit_pool
from workers_app.engine.flush import delete_workbook
from workers_app.engine.keys import redis_key
from workers_app.engine.live import mark_work_available, read_live, wake_agent, wake_key
from workers_app.engine.queues import populate_keys, requeue_unacked, sync_keys
from workers_app.engine.workbook_check import publish_workbook_checks
from workers_app.models import Worker, WorkerEvent
from workers_app.redis_client import get_redis
from workers_app.runs.files import adopt_legacy_workbooks

from . import hosts
from .inflight import pool_threads
from .install import CLAIM_SECONDS, InstallConflict, check_install, claim_namespace
from .lost_work import LostWork
from .rows import ensure_worker_rows, key_of
from .transitions import force_observed, set_observed
from .worker_side import ENV_NAME, NICE_ENV, START_GROUP_ENV, idle_queue

log = logging.getLogger(__name__)
ACTOR = "system:agent"
QUICK_FAILURE_SECONDS = 10
DRIFT_CHECK_SECONDS = 2.0
HOST_BEAT_SECONDS = 2.0
MAX_QUICK_FAILURES = 5
INSTALL_CONFLICT = 4  # the exit code of an agent that would mix two installs (see fleet.install)
PR_SET_PDEATHSIG = 1


@dataclass
class Child:
    pid: int
    generation: int
    started: float
    stop_sent: float | None = None
    kill_after: float | None = None
    restart: bool = False


def _child_main(worker: Worker, group: str, agent: int) -> int:
    """Runs in the forked child: become a Celery worker consuming only its idle queue (see worker_side)."""
    os.setpgrp()  # Ctrl-C in the terminal reaches the agent, which stops workers in order
    try:
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)  # die with the agent, never orphaned
    except (OSError, AttributeError):
        pass
    if os.getppid() != agent:
        return 1  # the agent died before this process was set to die with it
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    logs = settings.DATA_DIR / "logs"
    logs.mkdir(exist_ok=True)
    out = os.open(logs / f"{worker.name}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.environ[ENV_NAME] = worker.name
    os.environ[START_GROUP_ENV] = group
    os.environ[NICE_ENV] = str(min(19, os.nice(0) + settings.FLEET_WORKER_NICE))  # taken once it is ready
    limit_pool(settings.WORKER_DB_POOL_SIZE)
    # Built directly rather than through Celery's command line, which imports every sub-command first.
    process = app.Worker(hostname=worker.node_name, queues=[idle_queue(key_of(worker))], pool_cls="threads",
                         concurrency=pool_threads(worker.annotator), loglevel="INFO", without_mingle=True,
                         without_gossip=True, no_color=True)
    process.start()
    return process.exitcode or 0


def preload() -> None:
    """Import what every worker needs once, here, so that each fork starts warm and shares these pages."""
    import celery.apps.worker
    import celery.concurrency.thread
    import celery.worker.consumer  # noqa: F401
    import kombu.transport.redis  # noqa: F401

    app.loader.import_default_modules()  # every app's tasks module, found by autodiscovery
    # Objects made so far are never collected: the collector then does not write to (and so copy) the
    # pages each child shares with this parent.
    gc.freeze()


class Agent:
    def __init__(self, host: str):
        self.host = host
        self.children: dict[int, Child] = {}  # by Worker pk
        self.stopping = False
        self.lost_lock = False
        self.conflict = False  # another install holds this one's Redis namespace
        self.rebuild_owed = False  # Redis came back empty and what it held is not rebuilt yet
        self.next_drift_check = 0.0
        self.lost_work = LostWork()
        self.next_lost_work_check = 0.0
        self.drift_suspects: dict[int, tuple[str, float]] = {}  # by Worker pk: the desired state, the heartbeat
        self.next_beat = 0.0
        self.next_claim = 0.0
        self.next_workbook_report = 0.0
        self.started_at = timezone.now()
        preload()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._request_stop)
        signal.signal(signal.SIGINT, self._request_stop)
        try:
            check_install()
        except InstallConflict as exc:
            log.error("%s; this agent exits", exc)
            return INSTALL_CONFLICT
        # One agent per host: a second one would start every worker twice. A killed agent's lock expires.
        lock = get_redis().lock(redis_key("agent", self.host), timeout=settings.FLEET_AGENT_LOCK_SECONDS,
                                blocking_timeout=settings.FLEET_AGENT_LOCK_SECONDS + 5)
        if not lock.acquire():
            log.error("another fleet agent is running for host %s (same Redis); this one exits", self.host)
            return 3
        try:
            self._run_holding(lock)
        finally:
            try:
                lock.release()
            except (LockNotOwnedError, RedisError):
                pass  # Redis lost it or is away: it expires by itself
        return INSTALL_CONFLICT if self.conflict else 3 if self.lost_lock else 0

    def _run_holding(self, lock) -> None:
        # Forked workers would show this command line too; Celery retitles each as "[celeryd: <node>…]".
        setproctitle(f"annotation fleet agent {self.host}")
        ensure_worker_rows(self.host)
        moved = adopt_legacy_workbooks()
        if moved:
            log.info("moved %d workbook file(s) from before runs into the default run's folder", len(moved))
        self._forget_previous_processes()
        log.info("fleet agent for host %s is running", self.host)
        while not self.stopping:
            self._keep(lock)
            self._beat()
            self._reap()
            self._reconcile()
            self._correct_drift()
            self._hand_out_lost_work()
            self._report_workbooks()
            self._wait_for_news()
        self._stop_all()

    def _keep(self, lock) -> None:
        """Renew the host lock. Redis restarted empty or wiped takes the lock with it: take it again and rebuild
        what Redis held from the store. While Redis is away, reaping and reconciling go on from the database."""
        try:
            lock.reacquire()
            self._renew_claim()
        except LockNotOwnedError:
            log.warning("the host lock of %s vanished (Redis restarted empty or wiped): taking it again", self.host)
            self.rebuild_owed = True  # whatever happens next: Redis lost everything
            try:
                taken = lock.acquire(blocking=False)
            except RedisError as exc:  # a restart drops every connection just after its data: try at the next round
                log.warning("Redis unreachable while taking the host lock again (%s); trying again", exc)
                return
            if not taken:
                log.error("another fleet agent took host %s meanwhile; this one stops its workers and exits",
                          self.host)
                self.lost_lock = self.stopping = True
                return
        except RedisError as exc:
            log.warning("Redis unreachable (%s); carrying on from the database", exc)
        if self.rebuild_owed:
            self._rebuild_redis()

    def _renew_claim(self) -> None:
        """Hold this install's Redis namespace while the agent runs (see fleet.install)."""
        now = time.monotonic()
        if now < self.next_claim:
            return
        self.next_claim = now + CLAIM_SECONDS / 3
        try:
            claim_namespace()
        except InstallConflict as exc:
            log.error("%s; this agent stops its workers and exits", exc)
            self.conflict = self.stopping = True

    def _rebuild_redis(self) -> None:
        """Counters and queued sets from the store; the queues of the workers meant to run refilled. Owed until it
        succeeds: the lock, taken again already, would not show a second time that Redis lost everything."""
        rows = self._rows()
        try:
            sync_keys([key_of(w) for w in rows])
            queued = populate_keys([key_of(w) for w in rows if w.desired_state == Worker.Desired.RUNNING])
        except RedisError as exc:
            log.warning("rebuilding Redis failed (%s); the next renewal tries again", exc)
            return
        self.rebuild_owed = False
        log.info("Redis rebuilt from the store; requeued %d sample(s)", sum(queued.values()))

    def _request_stop(self, signum, frame) -> None:
        self.stopping = True

    def _wait_for_news(self) -> None:
        try:
            get_redis().blpop([wake_key(self.host)], timeout=0.5)
        except Exception:  # noqa: BLE001  Redis away: keep reaping and reconciling from the database
            time.sleep(0.5)

    def _rows(self) -> list[Worker]:
        """The workers placed here, and those moving away from here whose process this agent still runs."""
        close_old_connections()
        return list(Worker.objects.filter(Q(host=self.host) | Q(moving_from=self.host))
                    .select_related("annotator", "domain"))

    def _beat(self) -> None:
        now = time.monotonic()
        if now < self.next_beat:
            return
        self.next_beat = now + HOST_BEAT_SECONDS
        try:
            hosts.beat(self.host, pid=os.getpid(), started_at=self.started_at)
        except DatabaseError:  # the database away: staff see this host lost until it is back
            log.warning("could not record this host's beat", exc_info=True)

    def _report_workbooks(self) -> None:
        now = time.monotonic()
        if now < self.next_workbook_report:
            return
        self.next_workbook_report = now + settings.WORKBOOK_REPORT_SECONDS
        try:
            publish_workbook_checks([key_of(w) for w in self._rows() if w.host == self.host], self.host)
        except RedisError as exc:
            log.warning("could not publish the workbook checks (%s)", exc)

    def _forget_previous_processes(self) -> None:
        """A new agent has no children: rows saying otherwise describe processes of a previous agent."""
        for worker in self._rows():
            if worker.moving_from == self.host:
                continue  # handed over by the first reconcile
            if worker.observed_state in (Worker.Observed.STARTING, Worker.Observed.RUNNING, Worker.Observed.PAUSED,
                                         Worker.Observed.STOPPING, Worker.Observed.STALLED):
                force_observed(worker, Worker.Observed.EXITED, reason="agent restarted", actor=ACTOR, pid=None)

    # -- starting and stopping

    def _spawn(self, workers: list[Worker]) -> None:
        """Fork every process first, each waiting at a gate, then record them and open the gate. Forking one by one
        while the first ones already booted took seconds for thirty on two cores. Processes started together begin
        consuming together too (see worker_side's start group)."""
        if not workers:
            return
        group = f"{self.host}:{time.time_ns()}:{len(workers)}" if len(workers) > 1 else ""
        close_before_fork()
        sys.stdout.flush()
        sys.stderr.flush()
        gate, opener = os.pipe()
        agent = os.getpid()
        try:
            for worker in workers:
                pid = os.fork()
                if pid == 0:
                    code = 1
                    try:
                        os.close(opener)
                        os.read(gate, 1)  # end of file once the agent has recorded them all, or has died
                        os.close(gate)
                        code = _child_main(worker, group, agent)
                    finally:
                        os._exit(code)
                self.children[worker.pk] = Child(pid, worker.generation, time.monotonic())
            for worker in workers:
                force_observed(worker, Worker.Observed.STARTING, reason="process started", actor=ACTOR,
                               pid=self.children[worker.pk].pid)
        finally:
            os.close(gate)
            os.close(opener)

    def _signal_stop(self, worker: Worker, child: Child, *, restart: bool = False) -> None:
        force = worker.force_stop
        grace = settings.FLEET_FORCE_GRACE_SECONDS if force else settings.FLEET_STOP_GRACE_SECONDS
        # A forced restart is for a stalled process, which may not even run its signal handlers.
        sig = signal.SIGTERM if not force else signal.SIGKILL if restart else signal.SIGQUIT
        self._send(child.pid, sig)
        child.stop_sent = time.monotonic()
        child.kill_after = child.stop_sent + grace
        child.restart = restart
        force_observed(worker, Worker.Observed.STOPPING, reason="restart" if restart else "stop", actor=ACTOR)

    @staticmethod
    def _send(pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass  # already gone; the reaper will hear of it

    # -- the loop's two halves

    def _reconcile(self) -> None:
        now = time.monotonic()
        starting: list[Worker] = []
        rows = self._rows()
        for worker in rows:
            child = self.children.get(worker.pk)
            if worker.moving_from == self.host:
                self._reconcile_leaving(worker, child, now)
                continue
            if worker.moving_from and not self._arrived(worker):
                continue
            if child is not None:
                self._reconcile_running(worker, child, now)
            elif worker.desired_state != Worker.Desired.STOPPED and self._may_start(worker):
                starting.append(worker)
        self._spawn(starting)
        self._stop_strays({w.pk for w in rows}, now)

    def _stop_strays(self, placed_here: set[int], now: float) -> None:
        """Processes of workers taken over elsewhere while this host was cut off (lost, then back): another host
        runs them now, so these stop without touching the rows."""
        for worker_pk, child in self.children.items():
            if worker_pk in placed_here:
                continue
            if child.stop_sent is None:
                log.warning("worker %s now runs on another host: stopping this host's process", worker_pk)
                self._send(child.pid, signal.SIGTERM)
                child.stop_sent = now
                child.kill_after = now + settings.FLEET_STOP_GRACE_SECONDS
            elif now >= child.kill_after:
                self._send(child.pid, signal.SIGKILL)

    # -- moves between hosts: the old host stops the process and hands over, then the new host starts it

    def _reconcile_leaving(self, worker: Worker, child: Child | None, now: float) -> None:
        if child is None:
            self._hand_over(worker)
        elif child.stop_sent is None:
            self._signal_stop(worker, child)
        elif now >= child.kill_after:
            self._send(child.pid, signal.SIGKILL)

    def _hand_over(self, worker: Worker) -> None:
        """Its process is gone: drop the local workbook (the new host rebuilds it from the store, a copy left here
        would go stale) and let the new host start it."""
        try:
            delete_workbook(key_of(worker))
        except OSError as exc:
            log.warning("%s: could not delete its workbook here (%s); it is no longer kept up to date", worker.name,
                        exc)
        with transaction.atomic():
            force_observed(worker, Worker.Observed.EXITED, reason=f"moved to host {worker.host}", actor=ACTOR,
                           pid=None, force_stop=False)
            Worker.objects.filter(pk=worker.pk, moving_from=self.host).update(moving_from="")
        log.info("%s handed over to host %s", worker.name, worker.host)
        try:
            wake_agent(worker.host)
        except RedisError:
            pass  # that agent looks again within half a second anyway

    def _arrived(self, worker: Worker) -> bool:
        """A worker moving here starts once its old host has handed it over, or at once if that host is lost:
        then what its dead process held goes back to the queue first."""
        if hosts.is_alive(worker.moving_from):
            return False
        self._requeue_held(worker)
        with transaction.atomic():
            force_observed(worker, Worker.Observed.EXITED, actor=ACTOR, pid=None,
                           reason=f"taken over from lost host {worker.moving_from}")
            Worker.objects.filter(pk=worker.pk, moving_from=worker.moving_from).update(moving_from="")
        log.warning("%s taken over from lost host %s", worker.name, worker.moving_from)
        worker.moving_from = ""
        return True

    def _reconcile_running(self, worker: Worker, child: Child, now: float) -> None:
        if child.stop_sent is not None:
            if now >= child.kill_after:
                self._send(child.pid, signal.SIGKILL)
        elif worker.desired_state == Worker.Desired.STOPPED:
            self._signal_stop(worker, child)
        elif worker.generation > child.generation:
            self._signal_stop(worker, child, restart=True)

    def _correct_drift(self) -> None:
        """What each worker says in its heartbeat against what staff want: a worker told to stop consuming behind
        the product's back (`celery control cancel_consumer`, Flower), or one that lost its consumer in a Redis
        reconnect, is set right and the correction is a WorkerEvent."""
        now = time.monotonic()
        if now < self.next_drift_check:
            return
        self.next_drift_check = now + DRIFT_CHECK_SECONDS
        rows = [w for w in self._rows() if w.pk in self.children and self.children[w.pk].stop_sent is None
                and w.observed_state in (Worker.Observed.RUNNING, Worker.Observed.PAUSED)]
        try:
            beats = read_live([key_of(w) for w in rows], time.time())
        except RedisError:
            return  # no heartbeats to judge by while Redis is away
        # Only a heartbeat taken after the worker's last change of state can contradict that state.
        changed = dict(WorkerEvent.objects.filter(worker__in=rows).values_list("worker").annotate(last=Max("at")))
        suspected: dict[int, tuple[str, float]] = {}
        for worker, beat in zip(rows, beats, strict=True):
            since = changed.get(worker.pk) or worker.started_at
            at = beat.beat_at
            fresh = at is not None and since is not None and at > since.timestamp() + 1
            wanted = worker.desired_state == Worker.Desired.RUNNING
            if not (fresh and beat.consuming is not None and beat.consuming != wanted):
                continue
            # A pause or resume through the product is half done for a moment (the wish recorded, its event not
            # yet): a heartbeat taken then contradicts it. Drift is a contradiction a later heartbeat repeats.
            earlier = self.drift_suspects.get(worker.pk)
            if earlier is not None and earlier[0] == worker.desired_state and at > earlier[1]:
                self._set_right(worker, wanted)
            else:
                suspected[worker.pk] = earlier if earlier and earlier[0] == worker.desired_state else (
                    worker.desired_state, at)
        self.drift_suspects = suspected

    def _hand_out_lost_work(self) -> None:
        now = time.monotonic()
        if now < self.next_lost_work_check:
            return
        self.next_lost_work_check = now + settings.LOST_WORK_CHECK_SECONDS
        rows = [w for w in self._rows() if w.pk in self.children and self.children[w.pk].stop_sent is None
                and w.desired_state == Worker.Desired.RUNNING and w.observed_state == Worker.Observed.RUNNING]
        try:
            queued = self.lost_work.hand_out_again(rows)
        except RedisError:
            return  # Redis away: when it is back, the rebuild refills every queue
        for name, count in queued.items():
            log.warning("%s: %d sample(s) were in no queue, no worker's hands and no outcome; queued again", name,
                        count)

    @staticmethod
    def _set_right(worker: Worker, consume: bool) -> None:
        command, state = ("fleet_resume", Worker.Observed.RUNNING) if consume else ("fleet_pause",
                                                                                   Worker.Observed.PAUSED)
        app.control.broadcast(command, destination=[worker.node_name], reply=False)
        if consume:
            mark_work_available([key_of(worker)])
        reason = (f"drift: desired {worker.desired_state} but {'not ' if consume else ''}consuming -> corrected")
        log.warning("%s %s", worker.name, reason)
        if worker.observed_state != state:
            set_observed(worker, state, reason=reason, actor=ACTOR)
        else:  # no change of state, so no transition event: record the correction itself
            worker.events.create(from_state=state, to_state=state, reason=reason, actor=ACTOR)

    def _may_start(self, worker: Worker) -> bool:
        if worker.observed_state == Worker.Observed.FATAL:
            return False  # until staff launch it again
        if worker.observed_state == Worker.Observed.BACKOFF:
            return self._backoff_over(worker)
        return True

    @staticmethod
    def _backoff_over(worker: Worker) -> bool:
        delay = min(60, 2 ** worker.quick_failures)
        last = worker.events.order_by("-at").values_list("at", flat=True).first()
        return last is None or (timezone.now() - last).total_seconds() >= delay

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            for worker_pk, child in list(self.children.items()):
                if child.pid == pid:
                    del self.children[worker_pk]
                    self._exited(Worker.objects.select_related("annotator", "domain").get(pk=worker_pk), child,
                                 os.waitstatus_to_exitcode(status))

    def _exited(self, worker: Worker, child: Child, code: int) -> None:
        if self.host not in (worker.host, worker.moving_from):
            log.info("stray process of %s exited (%s); the worker runs on host %s", worker.name, code, worker.host)
            return  # the row and the queue are the new host's now
        self._requeue_held(worker)
        if worker.moving_from == self.host:
            self._hand_over(worker)
            return
        ran = time.monotonic() - child.started
        if child.restart:
            force_observed(worker, Worker.Observed.EXITED, reason="restarting", actor=ACTOR, pid=None,
                           restarts=worker.restarts + 1, force_stop=False)
            return
        if child.stop_sent is not None:
            force_observed(worker, Worker.Observed.STOPPED, reason=f"stopped (exit {code})", actor=ACTOR, pid=None,
                           force_stop=False)
            return
        reason = f"exited unexpectedly with {code} after {ran:.1f} s"
        log.warning("%s %s", worker.name, reason)
        if ran >= QUICK_FAILURE_SECONDS:
            force_observed(worker, Worker.Observed.EXITED, reason=reason, actor=ACTOR, pid=None, quick_failures=0,
                           restarts=worker.restarts + 1, last_error=reason)
        elif worker.quick_failures + 1 >= MAX_QUICK_FAILURES:
            force_observed(worker, Worker.Observed.FATAL, reason=f"{reason}; gave up after {MAX_QUICK_FAILURES} "
                           "quick failures", actor=ACTOR, pid=None, quick_failures=worker.quick_failures + 1,
                           last_error=reason)
        else:
            force_observed(worker, Worker.Observed.BACKOFF, reason=reason, actor=ACTOR, pid=None,
                           quick_failures=worker.quick_failures + 1, restarts=worker.restarts + 1, last_error=reason)

    @staticmethod
    def _requeue_held(worker: Worker) -> None:
        try:
            count = requeue_unacked(key_of(worker))
        except RedisError as exc:
            log.warning("%s: could not requeue what it held (%s); the broker returns it later", worker.name, exc)
            return
        if count:
            log.info("%s: requeued %d message(s) it held when it exited", worker.name, count)

    def _stop_all(self) -> None:
        log.info("stopping %d worker(s)", len(self.children))
        rows = {w.pk: w for w in self._rows()}
        self._stop_strays(set(rows), time.monotonic())
        for worker_pk, child in self.children.items():
            if child.stop_sent is None:
                self._signal_stop(rows[worker_pk], child)
        while self.children:
            self._reap()
            now = time.monotonic()
            for child in self.children.values():
                if now >= child.kill_after:
                    self._send(child.pid, signal.SIGKILL)
            time.sleep(0.1)
