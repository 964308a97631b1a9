"""An annotator's trained models as its worker holds them: read once per process and version, then answering
from memory in about a millisecond."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from workers_app.models import Annotator, TrainedBaseline

from .files import ModelFileRefused, read_model
from .training import predict


@dataclass(frozen=True)
class LoadedBaseline:
    annotator: int
    version: int
    domains: dict[str, dict]  # slug -> {"kind": ..., "model": the fitted pipeline}

    @property
    def name(self) -> str:
        return f"trained-baseline-v{self.version}"

    def knows(self, domain: str) -> bool:
        return domain in self.domains

    def not_learned(self, domain: str) -> str:
        return (f"{self.name} of annotator {self.annotator} has learned {', '.join(sorted(self.domains))}, not "
                f"{domain}: no label. Train it on a reference set that labels {domain}, or leave {domain} out of its "
                "runs.")

    def answer(self, domain: str, text: str) -> tuple[str, float]:
        """The class for ``text`` in a domain the model knows, and its probability."""
        return predict(self.domains[domain]["model"], text)


_loaded: dict[tuple[int, int], LoadedBaseline] = {}
_lock = threading.Lock()


def loaded_baseline(annotator: Annotator) -> LoadedBaseline:
    """The annotator's current (or, in a run, pinned) version, read and checked on first use in this process."""
    key = (annotator.pk, annotator.baseline_version)
    found = _loaded.get(key)
    if found is not None:
        return found
    with _lock:  # one thread reads the file; the others wait for it rather than read it too
        found = _loaded.get(key)
        if found is None:
            found = _read(annotator)
            _loaded[key] = found
    return found


def _read(annotator: Annotator) -> LoadedBaseline:
    number, version = annotator.number, annotator.baseline_version
    if not version:
        raise ModelFileRefused(f"annotator {number} has no trained model yet: train it first (manage.py baseline "
                               f"train --annotator {number} --reference NAME)")
    row = TrainedBaseline.objects.filter(annotator_id=annotator.pk, version=version).values(
        "file_name", "sha256").first()
    if row is None:
        raise ModelFileRefused(f"annotator {number}'s trained model version {version} is not in the store; train it "
                               f"again (manage.py baseline train --annotator {number} --reference NAME)")
    models = read_model(row["file_name"], annotator=number, version=version, sha256=row["sha256"])
    return LoadedBaseline(number, version, models["domains"])


def forget_loaded() -> None:
    with _lock:
        _loaded.clear()
