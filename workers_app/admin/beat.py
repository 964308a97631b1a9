"""Beat schedules: anyone with the view permission sees them; only superusers add, change, delete or run them, and
every edit is audited (``schedule_change``, naming the task and the fields changed).

Refused: a schedule that runs any task more often than every 5 seconds, and the archive more often than hourly
(each run writes a full archive of the data and prunes the oldest).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from itertools import pairwise

from celery.schedules import crontab
from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django_celery_beat import admin as beat_admin
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask, SolarSchedule

from audit.actions import Action
from audit.admin_helpers import AuditedModelAdmin, client_address
from audit.services import audited

SHORTEST_PERIOD = timedelta(seconds=5)
ARCHIVE_TASK = "admin_ops.scheduled_archive"
SHORTEST_ARCHIVE_PERIOD = timedelta(hours=1)


def interval_period(every: int, period: str) -> timedelta:
    return timedelta(**{period: every})


def crontab_period(minute: str) -> timedelta:
    """The shortest time between two runs within an hour; a crontab that runs at one minute runs at most hourly."""
    minutes = sorted(crontab(minute=minute).minute)
    gaps = [later - earlier for earlier, later in pairwise(minutes)] + [60 + minutes[0] - minutes[-1]]
    return timedelta(minutes=min(gaps))


def too_often(period: timedelta, tasks: list[str]) -> str | None:
    """Why a schedule that runs ``tasks`` every ``period`` is refused, or None."""
    every = f"runs every {period.total_seconds():g} seconds"
    if period < SHORTEST_PERIOD:
        return f"{every}: no task may run more often than every {SHORTEST_PERIOD.total_seconds():g} seconds"
    if ARCHIVE_TASK in tasks and period < SHORTEST_ARCHIVE_PERIOD:
        return f"{every}: {ARCHIVE_TASK} may run at most once an hour"
    return None


def tasks_using(schedule) -> list[str]:
    if schedule.pk is None:
        return []
    return sorted(schedule.periodictask_set.values_list("task", flat=True))


def refuse_if_too_often(form: forms.ModelForm, field: str, period: timedelta, tasks: list[str]) -> None:
    problem = too_often(period, tasks)
    if problem:
        form.add_error(field, problem)


class CheckedPeriodicTaskForm(beat_admin.PeriodicTaskForm):
    def clean(self):
        data = super().clean()
        tasks = [data["task"]]
        if data.get("interval"):
            refuse_if_too_often(self, "interval", interval_period(data["interval"].every, data["interval"].period),
                                tasks)
        if data.get("crontab"):
            refuse_if_too_often(self, "crontab", crontab_period(data["crontab"].minute), tasks)
        return data


class CheckedIntervalForm(forms.ModelForm):
    class Meta:
        model = IntervalSchedule
        fields = "__all__"

    def clean(self):
        data = super().clean()
        if data.get("every") is not None and data.get("period"):
            refuse_if_too_often(self, "every", interval_period(data["every"], data["period"]),
                                tasks_using(self.instance))
        return data


class CheckedCrontabForm(forms.ModelForm):
    class Meta:
        model = CrontabSchedule
        fields = "__all__"

    def clean(self):
        data = super().clean()
        if data.get("minute"):
            refuse_if_too_often(self, "minute", crontab_period(data["minute"]), tasks_using(self.instance))
        return data


def require_superuser(request: HttpRequest) -> None:
    # The has_*_permission checks below refuse too, but without saying why; this reason reaches the audit row.
    if not request.user.is_superuser:
        raise PermissionDenied("only superusers may add, change or delete beat schedules")


def audited_action(function: Callable, name: str) -> Callable:
    def run(model_admin: admin.ModelAdmin, request: HttpRequest, queryset):
        with audited(Action.SCHEDULE_CHANGE, actor=request.user, targets=[f"periodictask {task}" for task in queryset],
                     parameters={"edit": name}, client_address=client_address(request)):
            return function(model_admin, request, queryset)

    return run


class SuperuserEditsAdmin(AuditedModelAdmin):
    """Viewing follows the view permission; adding, changing, deleting and the list actions need a superuser."""

    audit_action = Action.SCHEDULE_CHANGE

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if object_id is None or request.method == "POST":
            require_superuser(request)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        require_superuser(request)
        return super().delete_view(request, object_id, extra_context)

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def get_actions(self, request):
        if not request.user.is_superuser:
            return {}
        # delete_selected goes through delete_model, which audits each deletion already.
        return {name: (function if name == "delete_selected" else audited_action(function, name), name, description)
                for name, (function, _, description) in super().get_actions(request).items()}


class AuditedScheduleAdmin(SuperuserEditsAdmin):
    def audit_parameters(self, obj, fields: list[str]) -> dict:
        return {"fields": fields, "tasks": tasks_using(obj)}


for model in (PeriodicTask, IntervalSchedule, CrontabSchedule, SolarSchedule, ClockedSchedule):
    admin.site.unregister(model)


@admin.register(PeriodicTask)
class PeriodicTaskAdmin(SuperuserEditsAdmin, beat_admin.PeriodicTaskAdmin):
    form = CheckedPeriodicTaskForm

    def audit_parameters(self, obj, fields: list[str]) -> dict:
        return {"fields": fields, "task": obj.task}


@admin.register(IntervalSchedule)
class IntervalScheduleAdmin(AuditedScheduleAdmin, beat_admin.IntervalScheduleAdmin):
    form = CheckedIntervalForm


@admin.register(CrontabSchedule)
class CrontabScheduleAdmin(AuditedScheduleAdmin, beat_admin.CrontabScheduleAdmin):
    form = CheckedCrontabForm


@admin.register(SolarSchedule)
class SolarScheduleAdmin(AuditedScheduleAdmin, beat_admin.SolarScheduleAdmin):
    pass


@admin.register(ClockedSchedule)
class ClockedScheduleAdmin(AuditedScheduleAdmin, beat_admin.ClockedScheduleAdmin):
    pass
