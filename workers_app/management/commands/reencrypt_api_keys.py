from django.core.management.base import BaseCommand, CommandError

from annotation_site.secret_box import add_key_file_key, drop_old_key_file_keys
from audit.actors import cli_actor
from workers_app.engine.api_keys import reencrypt_api_keys


class Command(BaseCommand):
    help = ("Encrypt every stored API key again with the current encryption key. With --new-key (keys kept in "
            "DATA_DIR only), make a new encryption key first and drop the old one afterwards. Workers keep running.")

    def add_arguments(self, parser):
        parser.add_argument("--new-key", action="store_true", help="rotate DATA_DIR/field_encryption_key first")

    def handle(self, *args, new_key, **options):
        if new_key:
            try:
                add_key_file_key()
            except ValueError as exc:
                raise CommandError(str(exc)) from None
        count = reencrypt_api_keys(actor=cli_actor())
        if new_key:
            drop_old_key_file_keys()
        self.stdout.write(f"re-encrypted {count} stored API key(s)" + (" with a new key" if new_key else ""))
