"""The four staff roles as Django groups: viewer < reviewer < operator; superusers have everything.

Each permission is checked where the action runs (the service or its one adapter), so a role is only a
convenient bundle; staff may also be given single permissions.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

from audit.actions import Action
from audit.actors import Actor
from audit.services import audited

VIEWER = [f"workers_app.view_{model}" for model in ("worker", "workerevent", "annotator", "domain", "corpus",
                                                     "sample", "alert", "workermetric", "host", "batch")] + [
    "admin_ops.view_archive",
    # Reference sets and the quality of runs against them.
    "workers_app.view_referenceset", "workers_app.view_quality",
    # Personal API tokens: each acts with its owner's permissions, so every role may make (and revoke) its own.
    "api.add_apitoken", "api.view_apitoken"]
REVIEWER = [*VIEWER, "admin_ops.consolidate", "admin_ops.export_state", "audit.view_auditlog",
            "workers_app.review_sample", "workers_app.view_reviewitem",
            # The LEVEL_4 alerts are theirs to acknowledge (and the operators', who have every reviewer permission).
            "workers_app.acknowledge_alert"]
OPERATOR = [*REVIEWER, *(f"workers_app.{verb}_worker" for verb in ("launch", "pause", "resume", "stop", "restart",
                                                                   "flush", "move")),
            "workers_app.change_annotator", "workers_app.change_domain", "workers_app.add_corpus",
            "workers_app.add_referenceset", "workers_app.delete_referenceset",
            "workers_app.view_alertchannel", "workers_app.add_alertchannel", "workers_app.change_alertchannel",
            "admin_ops.create_archive", "admin_ops.verify_archive", "admin_ops.restore_archive",
            "admin_ops.reset_data", "admin_ops.import_state"]
ROLES = {"viewer": VIEWER, "reviewer": REVIEWER, "operator": OPERATOR}


def _permission(dotted: str) -> Permission:
    app_label, codename = dotted.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def seed_roles(*, actor: Actor) -> list[str]:
    """Create the role groups that are missing; never change one that exists (staff may have edited it)."""
    missing = [name for name in ROLES if not Group.objects.filter(name=name).exists()]
    if missing:
        with audited(Action.SEED_ROLES, actor=actor, parameters={"created": missing}):
            for name in missing:
                Group.objects.create(name=name).permissions.set([_permission(p) for p in ROLES[name]])
    return missing
