import logging

from django.conf import settings
from django.core.management.base import BaseCommand

from workers_app.fleet.agent import Agent


class Command(BaseCommand):
    help = "Run this host's fleet agent: the parent of its worker processes. SIGTERM stops them gracefully."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.FLEET_HOST, help="the host name whose workers to run")

    def handle(self, *args, host, **options):
        logging.basicConfig(level=logging.INFO, format="%(asctime)s agent %(levelname)s %(message)s")
        code = Agent(host).run()
        if code:
            raise SystemExit(code)
