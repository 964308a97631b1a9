"""The admin site every model admin is registered on, ours and other apps' alike (Django's ``default_site``).

Django's admin lists accept a lookup on any of a model's own fields from the query string: ``?text__regex=…`` runs a
regular expression of the visitor's choosing in the database (seconds to minutes of a server thread for one
request), and ``?api_key_encrypted__startswith=…`` reads a stored secret one character at a time. Here a list
filters only by what its page offers: the lookups its ``list_filter`` and ``date_hierarchy`` make (searching goes
through ``?q=`` and the page's ``search_fields``), never on a field that holds a secret. A refused lookup is a 400
that the audit log records (audit.middleware).

An admin action the user may not run is refused with 403 (and audited), where Django would only reload the page.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin import widgets
from django.contrib.admin.apps import AdminConfig
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.db import models
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest

# Fields that hold a secret or what proves one (model label, field name): no lookup ever reaches them.
SECRET_FIELDS = {("workers_app.annotator", "api_key_encrypted"), ("api.apitoken", "digest"),
                 ("auth.user", "password"), ("workers_app.alertchannel", "target")}
# What the admin's own filters ask of a field they offer: equality, emptiness, ranges and date parts, no patterns.
OFFERED_LOOKUPS = {"exact", "iexact", "isnull", "isempty", "in", "gt", "gte", "lt", "lte", "year", "month", "day"}


def _fields_on_path(model: type[models.Model], lookup: str) -> list[models.Field]:
    """The model fields a lookup walks through (``user__groups__name__regex``: user, groups, name)."""
    fields = []
    for part in lookup.split(LOOKUP_SEP):
        try:
            field = model._meta.get_field(part)
        except FieldDoesNotExist:
            break
        fields.append(field)
        if not getattr(field, "path_infos", None):
            break
        model = field.path_infos[-1].to_opts.model
    return fields


def touches_a_secret(model: type[models.Model], lookup: str) -> bool:
    return any((field.model._meta.label_lower, field.name) in SECRET_FIELDS
               for field in _fields_on_path(model, lookup))


def _offered_paths(model_admin: admin.ModelAdmin, request: HttpRequest | None) -> tuple[set[str], set[str]]:
    """The field paths a page's filters and date drill-down use, and the parameter names of its own filters."""
    paths, names = set(), set()
    for item in model_admin.get_list_filter(request):
        if isinstance(item, type) and issubclass(item, admin.SimpleListFilter):
            names.add(item.parameter_name)
        elif isinstance(item, (list, tuple)):
            paths.add(item[0] if isinstance(item[0], str) else item[0].name)
        elif isinstance(item, str):
            paths.add(item)
    if model_admin.date_hierarchy:
        paths.add(model_admin.date_hierarchy)
    return paths, names


def _related_key(model: type[models.Model], path: str) -> set[str]:
    """How a filter on a relation names the related row: its target field (``user__id__exact``), or pk."""
    fields = _fields_on_path(model, path)
    target = getattr(fields[-1], "target_field", None) if fields and fields[-1].is_relation else None
    return {"pk", *([target.name] if target is not None else [])}


def lookup_offered(model_admin: admin.ModelAdmin, lookup: str, value: str, request: HttpRequest | None) -> bool:
    model = model_admin.model
    if touches_a_secret(model, lookup):
        return False
    # Django's own allowance, kept: the related-object popups filter by a ForeignKey's limit_choices_to.
    for fk_lookup in model._meta.related_fkey_lookups:
        fk_lookup = fk_lookup() if callable(fk_lookup) else fk_lookup
        if (lookup, value) in widgets.url_params_from_lookup_dict(fk_lookup).items():
            return True
    paths, names = _offered_paths(model_admin, request)
    if lookup in names or lookup in paths:
        return True
    for path in paths:
        if lookup.startswith(path + LOOKUP_SEP):
            rest = lookup[len(path) + len(LOOKUP_SEP):].split(LOOKUP_SEP)
            if rest[-1] in OFFERED_LOOKUPS and (len(rest) == 1 or (len(rest) == 2
                                                                   and rest[0] in _related_key(model, path))):
                return True
    return False


class StrictModelAdmin:
    """Mixed into every registered model admin by ConsoleAdminSite.register."""

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        return lookup_offered(self, lookup, value, request)

    def changelist_view(self, request: HttpRequest, extra_context=None):
        name = request.POST.get("action", "") if request.method == "POST" else ""
        if name and name not in self.get_actions(request) \
                and name in {known for _, known, _ in self._get_base_actions()}:
            raise PermissionDenied(f"the action '{name}' needs a permission this user does not have")
        return super().changelist_view(request, extra_context)


class ConsoleAdminSite(admin.AdminSite):
    def register(self, model_or_iterable, admin_class=None, **options) -> None:
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, StrictModelAdmin):
            admin_class = type(admin_class)(admin_class.__name__, (StrictModelAdmin, admin_class),
                                            {"__module__": admin_class.__module__,
                                             "__qualname__": admin_class.__qualname__})
        super().register(model_or_iterable, admin_class, **options)


class ConsoleAdminConfig(AdminConfig):
    default_site = "annotation_site.admin_site.ConsoleAdminSite"
