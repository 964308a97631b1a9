from django.apps import AppConfig


class WorkersAppConfig(AppConfig):
    name = "workers_app"
    verbose_name = "Annotation"

    def ready(self) -> None:
        # Imported here, Django's way: the receiver's module needs the models, which are loaded only now.
        from audit.signals import mirror_failed
        from workers_app.monitoring.audit_alerts import open_mirror_alert

        mirror_failed.connect(open_mirror_alert, dispatch_uid="workers_app.audit_mirror_alert")
