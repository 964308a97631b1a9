import json

from django.core.management.base import BaseCommand, CommandError

from annotation_site.checks import ENVIRONMENT
from audit.actors import cli_actor
from workers_app.engine.queues import UnknownWorker
from workers_app.fleet.hosts import InvalidHost, check_host_name
from workers_app.fleet.rows import select_workers
from workers_app.fleet.services import OPERATIONS
from workers_app.management.cli import annotator_number, worker_option
from workers_app.monitoring.checks import evaluate


class Command(BaseCommand):
    # The settings and DATA_DIR checks only: the full set loads every URL and admin page, half a second per call.
    requires_system_checks = [ENVIRONMENT]
    help = "Launch, pause, resume, stop, restart, flush, move to another host or show the status of workers."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=[*OPERATIONS, "health"])
        scope = parser.add_mutually_exclusive_group()
        scope.add_argument("--all", action="store_true", help="every worker")
        scope.add_argument("--annotator", type=annotator_number, metavar="N", help="the 6 workers of annotator N")
        scope.add_argument("--domain", metavar="NAME", help="the 5 workers of one domain")
        scope.add_argument("--worker", type=worker_option, metavar="N:DOMAIN", help="one worker, e.g. 2:urgency")
        scope.add_argument("--from", dest="from_host", metavar="HOST", help="the workers placed on HOST")
        parser.add_argument("--to", metavar="HOST", help="move: the host to place the workers on")
        parser.add_argument("--force", action="store_true", help="stop: cold shutdown, killed after a short grace")
        parser.add_argument("--json", action="store_true", help="print the per-worker results as JSON")

    def handle(self, *args, action, annotator, domain, worker, from_host, force, to, **options):
        if force and action != "stop":
            raise CommandError("--force applies to stop only")
        if (to is None) != (action != "move"):
            raise CommandError("move needs --to HOST" if action == "move" else "--to applies to move only")
        if action != "health" and not (options["all"] or annotator or domain or worker or from_host):
            raise CommandError("say which workers: --all, --annotator N, --domain NAME, --worker N:DOMAIN or "
                               "--from HOST")
        if worker:
            annotator, domain = worker
        try:
            extra = {"force": True} if force else {"to_host": check_host_name(to)} if to is not None else {}
            workers = select_workers(annotator, domain)
        except (UnknownWorker, InvalidHost) as exc:
            raise CommandError(str(exc)) from None
        if from_host is not None:
            workers = [w for w in workers if w.host == from_host]
            if not workers:
                raise CommandError(f"no worker is placed on host {from_host!r}")
        if action == "health":
            self._health(workers, as_json=options["json"])
            return
        results = OPERATIONS[action](workers, actor=cli_actor(), **extra)
        if options["json"]:
            self.stdout.write(json.dumps([r.as_dict() for r in results], indent=2))
        else:
            for r in results:
                self.stdout.write(f"{r.worker:32} {'ok' if r.ok else 'FAILED':7} {r.state:9} {r.message}")
        if not all(r.ok for r in results):
            raise SystemExit(1)

    def _health(self, workers, *, as_json: bool) -> None:
        reports = evaluate(workers)
        if as_json:
            self.stdout.write(json.dumps([r.as_dict() for r in reports], indent=2))
        else:
            for r in reports:
                failing = "; ".join(f"{c.name}: {c.reason}" for c in r.checks if not c.ok)
                self.stdout.write(f"{r.worker.name:32} {'healthy' if r.healthy else 'UNHEALTHY':9} "
                                  f"{r.worker.observed_state:9} {failing}")
        if not all(r.healthy for r in reports):
            raise SystemExit(1)
