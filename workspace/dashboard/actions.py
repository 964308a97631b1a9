"""The fleet actions the dashboard offers: each a thin adapter over the fleet service staff use everywhere."""

from __future__ import annotations

from dataclasses import dataclass

from workers_app.engine.keys import WorkerKey
from workers_app.fleet.results import WorkerResult
from workers_app.fleet.rows import workers_for
from workers_app.fleet.services import OPERATIONS

# In the order the buttons show; "move" needs a host and stays in the admin.
ACTIONS = ("launch", "pause", "resume", "flush", "restart", "stop")
CONFIRM = {"stop", "restart"}  # as in the admin: they interrupt work


class ActionRefused(ValueError):
    """A request that names no action, no worker, or one that does not exist."""


@dataclass(frozen=True)
class ActionRequest:
    operation: str
    names: list[str]

    @property
    def permission(self) -> str:
        return f"workers_app.{self.operation}_worker"

    @property
    def needs_confirmation(self) -> bool:
        return self.operation in CONFIRM


def parse_action(operation: str, names: list[str]) -> ActionRequest:
    if operation not in ACTIONS:
        raise ActionRefused(f"unknown action {operation[:40]!r}: choose one of {', '.join(ACTIONS)}")
    if not names:
        raise ActionRefused("select at least one worker")
    if len(names) > 200:
        raise ActionRefused("too many workers named")
    for name in names:
        try:
            WorkerKey.parse(name)
        except ValueError as exc:
            raise ActionRefused(str(exc)[:200]) from None
    return ActionRequest(operation, sorted(set(names)))


def run_action(request: ActionRequest, *, actor) -> list[WorkerResult]:
    keys = [WorkerKey.parse(name) for name in request.names]
    workers = workers_for(keys)
    missing = sorted(set(request.names) - {w.name for w in workers})
    if missing:
        raise ActionRefused(f"no such worker: {', '.join(missing)}")
    return OPERATIONS[request.operation](workers, actor=actor)


def allowed_actions(user) -> list[str]:
    return [op for op in ACTIONS if user.has_perm(f"workers_app.{op}_worker")]
