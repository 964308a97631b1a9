from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit"

    def ready(self) -> None:
        # Imported here, Django's way: the receivers need the auth models, which are loaded only now.
        from .accounts import connect_receivers

        connect_receivers()
