from django.core.management.base import BaseCommand, CommandError

from audit.actors import cli_actor
from workers_app.engine.response_cache import cache_stats, clear_cache
from workers_app.models import Annotator


class Command(BaseCommand):
    help = "The response cache: hit rate per annotator (stats), or clear it by annotator, model or all (audited)."

    def add_arguments(self, parser):
        commands = parser.add_subparsers(dest="command", required=True)
        commands.add_parser("stats", help="entries filled and hit rate per annotator")
        clear = commands.add_parser("clear", help="delete entries: exactly one of --annotator, --model, --all")
        scope = clear.add_mutually_exclusive_group(required=True)
        scope.add_argument("--annotator", type=int, help="the entries this annotator filled")
        scope.add_argument("--model", help="the entries of this model")
        scope.add_argument("--all", action="store_true", help="every entry")

    def handle(self, *args, **options):
        if options["command"] == "stats":
            self._stats()
        else:
            deleted = clear_cache(actor=cli_actor(), annotator=self._annotator(options["annotator"]),
                                  model=options["model"])
            self.stdout.write(f"deleted {deleted} cached response(s)")

    def _stats(self) -> None:
        for row in cache_stats():
            rate = "—" if row.hit_rate is None else f"{row.hit_rate:.1%}"
            self.stdout.write(f"annotator {row.annotator:3}  entries {row.entries:7}  outcomes {row.outcomes:7}  "
                              f"hits {row.hits:7}  hit rate {rate}")

    @staticmethod
    def _annotator(number: int | None) -> Annotator | None:
        if number is None:
            return None
        try:
            return Annotator.objects.get(number=number)
        except Annotator.DoesNotExist:
            raise CommandError(f"no annotator {number}") from None
