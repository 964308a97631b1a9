"""ControlAPI: the Python facade scripts use; every call goes through the fleet services."""

from __future__ import annotations

from audit.actors import Actor

from .results import WorkerResult
from .rows import select_workers
from .selectors import queue_stats, worker_status
from .services import OPERATIONS


class UnknownCommand(ValueError):
    pass


class ControlAPI:
    def __init__(self, actor: Actor = "api"):
        self.actor = actor

    def execute_command(self, command: str, annotator: int | None = None, domain: str | None = None,
                        **options) -> list[WorkerResult]:
        """Run ``command`` (launch, pause, resume, stop, restart, flush, status) on the workers in scope."""
        operation = OPERATIONS.get(command)
        if operation is None:
            raise UnknownCommand(f"unknown command '{command}'; the commands are {', '.join(OPERATIONS)}")
        workers = select_workers(annotator, domain)
        return operation(workers, actor=self.actor, **options)

    def global_status(self) -> list[dict]:
        return [worker_status(w) for w in select_workers()]

    def queue_stats(self) -> dict[str, dict[str, int]]:
        return queue_stats(select_workers())
