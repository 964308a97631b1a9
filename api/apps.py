from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "HTTP API"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, Django's way: the receivers need the auth models, which are loaded only now.
        from .receivers import connect_receivers

        connect_receivers()
