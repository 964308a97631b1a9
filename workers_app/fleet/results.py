"""What every fleet operation returns: one result per worker."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class WorkerResult:
    worker: str
    ok: bool
    state: str
    message: str
    detail: dict = field(default_factory=dict)  # figures an adapter may show (e.g. messages purged)

    def as_dict(self) -> dict:
        return asdict(self)
