from django.contrib import admin
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from audit.admin_helpers import ReadOnlyAdmin

from .admin_operations import (
    consolidate_view,
    create_archive_view,
    download_archive_view,
    export_state_view,
    import_state_view,
    operations_view,
    reset_view,
    restore_archives,
    verify_archives,
)
from .models import Archive


@admin.register(Archive)
class ArchiveAdmin(ReadOnlyAdmin):
    list_display = ("name", "created_at", "created_by", "size", "counts", "verified_at", "verify_ok", "download")
    change_list_template = "admin/admin_ops/archive/change_list.html"
    actions = ["verify", "restore"]

    def has_verify_permission(self, request):
        return request.user.has_perm("admin_ops.verify_archive")

    def has_restore_permission(self, request):
        return request.user.has_perm("admin_ops.restore_archive")

    @admin.action(description="Verify checksums", permissions=["verify"])
    def verify(self, request, queryset):
        verify_archives(self, request, queryset)

    @admin.action(description="Restore…", permissions=["restore"])
    def restore(self, request, queryset):
        return restore_archives(self, request, queryset)

    @admin.display(description="file")
    def download(self, obj: Archive) -> str:
        url = reverse("admin:admin_ops_archive_download", args=[obj.pk])
        return format_html('<a href="{}">download</a>', url)

    def get_urls(self):
        def view(function, name, route, *, changes_state: bool = False):
            def bound(request, **kw):
                return function(self, request, **kw)

            # What changes state answers POST only (405 otherwise); admin_view adds the login and CSRF checks.
            return path(route, self.admin_site.admin_view(require_POST(bound) if changes_state else bound),
                        name=name)

        return [
            view(operations_view, "admin_ops_operations", "operations/"),
            view(reset_view, "admin_ops_reset", "operations/reset/", changes_state=True),
            view(create_archive_view, "admin_ops_create_archive", "operations/archive/", changes_state=True),
            view(export_state_view, "admin_ops_export_state", "operations/export-state/"),
            view(import_state_view, "admin_ops_import_state", "operations/import-state/", changes_state=True),
            view(consolidate_view, "admin_ops_consolidate", "operations/consolidate/", changes_state=True),
            view(download_archive_view, "admin_ops_archive_download", "<int:pk>/download/"),
            *super().get_urls(),
        ]
