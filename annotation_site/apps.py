from django.apps import AppConfig


class AnnotationSiteConfig(AppConfig):
    name = "annotation_site"
    verbose_name = "Site"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
