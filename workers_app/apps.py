from django.apps import AppConfig
from django.utils.module_loading import import_string

from audit.signals import mirror_failed


class WorkersAppConfig(AppConfig):
    name = "workers_app"
    verbose_name = "Annotation"

    def ready(self) -> None:
        # By dotted path: the receiver's module needs the models, which are loaded only now.
        mirror_failed.connect(import_string("workers_app.monitoring.audit_alerts.open_mirror_alert"),
                              dispatch_uid="workers_app.audit_mirror_alert")
