from django.apps import AppConfig
from django.utils.module_loading import import_string


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit"

    def ready(self) -> None:
        # By dotted path: the receivers need the auth models, which are loaded only now.
        import_string("audit.accounts.connect_receivers")()
