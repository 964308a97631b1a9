"""The trained baselines' model files under DATA_DIR/baselines/annotator-N/: written atomically, read only when they
are exactly what this console wrote.

A file is a line naming the format, a JSON line saying whose model it is (annotator, version), then the pickled
models. Unpickling runs code, so before anything is unpickled the header must name the expected annotator and
version (else the file is stale: another version's) and the whole file must have the SHA-256 the store recorded
when it was trained (else it is foreign: changed or replaced since).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path

from django.conf import settings

from annotation_site.files import replacing

MAGIC = b"annotation-fleet trained baseline 1\n"
FOLDER = "baselines"
MAX_HEADER_BYTES = 4096


class ModelFileRefused(Exception):
    """A model file that is missing, stale or not ours: never unpickled; the message says which and what to do."""


def model_bytes(annotator: int, version: int, models: dict) -> bytes:
    header = json.dumps({"annotator": annotator, "version": version}).encode() + b"\n"
    return MAGIC + header + pickle.dumps(models, protocol=pickle.HIGHEST_PROTOCOL)


def model_file_name(annotator: int, version: int, content: bytes) -> str:
    """Relative to DATA_DIR; the content's hash in the name keeps two trainings at once from writing one file."""
    return f"{FOLDER}/annotator-{annotator}/v{version}-{hashlib.sha256(content).hexdigest()[:16]}.pkl"


def write_model(relative: str, content: bytes) -> Path:
    """``content`` at DATA_DIR/``relative``, atomically: a kill or an error at any instant leaves the file that was
    there (if any) or the new one, never part of one."""
    target = settings.DATA_DIR / relative
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with replacing(target) as (fd, _):
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view):]
    return target


def _retrain(annotator: int) -> str:
    return f"train it again (manage.py baseline train --annotator {annotator} --reference NAME)"


def read_model(relative: str, *, annotator: int, version: int, sha256: str) -> dict:
    """The models of ``annotator``'s ``version`` from DATA_DIR/``relative``, if the file is the one recorded."""
    path = settings.DATA_DIR / relative
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise ModelFileRefused(f"annotator {annotator}'s trained model version {version} cannot be read from {path} "
                               f"({exc.strerror or exc}); {_retrain(annotator)}") from None
    header_end = content.find(b"\n", len(MAGIC), len(MAGIC) + MAX_HEADER_BYTES)
    if not content.startswith(MAGIC) or header_end < 0:
        raise ModelFileRefused(f"{path} is not a trained-baseline file written by this console; refusing to load "
                               f"it. {_retrain(annotator).capitalize()}")
    try:
        header = json.loads(content[len(MAGIC):header_end])
        holds = (header["annotator"], header["version"])
    except (ValueError, TypeError, KeyError):
        raise ModelFileRefused(f"{path} has an unreadable header; refusing to load it. "
                               f"{_retrain(annotator).capitalize()}") from None
    if holds != (annotator, version):
        raise ModelFileRefused(f"{path} is stale: it holds annotator {holds[0]}'s version {holds[1]}, but annotator "
                               f"{annotator} answers with version {version}; refusing to load it. "
                               f"{_retrain(annotator).capitalize()}")
    if hashlib.sha256(content).hexdigest() != sha256:
        raise ModelFileRefused(f"{path} is not the file trained as annotator {annotator}'s version {version}: its "
                               "SHA-256 differs from the one recorded then (changed or replaced since); refusing to "
                               f"load it. {_retrain(annotator).capitalize()}")
    return pickle.loads(content[header_end + 1:])  # the exact bytes this console wrote (checked above)
