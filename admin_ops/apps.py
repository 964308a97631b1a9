from django.apps import AppConfig


class AdminOpsConfig(AppConfig):
    name = "admin_ops"
    verbose_name = "Administration"

    def ready(self) -> None:
        # Imported here, Django's way: the receiver's module needs the auth models, which are loaded only now.
        from django.contrib.auth import get_user_model
        from django.db.models.signals import m2m_changed

        from admin_ops.services.people import make_role_members_staff

        m2m_changed.connect(make_role_members_staff, sender=get_user_model().groups.through,
                            dispatch_uid="admin_ops.role_members_staff")
