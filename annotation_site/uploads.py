"""Uploaded files on disk: for a reader that needs a path (openpyxl, the corpus and archive readers), and kept a
while for a job that reads them later (a corpus import runs on the control worker, after staff saw its preview).

A kept upload is named by a random token only; the name the user gave it never becomes part of a path."""

from __future__ import annotations

import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

KEEP_SECONDS = 24 * 3600
TOKEN = re.compile(r"[0-9a-f]{32}")


class UploadGone(LookupError):
    """No kept upload by that token: never made, already used, or pruned."""


@contextmanager
def upload_on_disk(upload: UploadedFile) -> Iterator[Path]:
    """Django has streamed a large upload to a temporary file already; a small one, kept in memory, is written to
    one here. Either file is removed afterwards."""
    try:
        if hasattr(upload, "temporary_file_path"):
            yield Path(upload.temporary_file_path())
            return
        with tempfile.TemporaryDirectory() as tmp:
            saved = Path(tmp) / "upload"
            with saved.open("wb") as handle:
                for chunk in upload.chunks():
                    handle.write(chunk)
            yield saved
    finally:
        upload.close()


def _folder() -> Path:
    folder = settings.DATA_DIR / "uploads"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def keep_upload(upload: UploadedFile) -> str:
    """Keep the upload in DATA_DIR/uploads under a new random token; uploads older than a day are removed."""
    prune_uploads()
    token = secrets.token_hex(16)
    with upload_on_disk(upload) as saved, (_folder() / token).open("xb") as kept, saved.open("rb") as source:
        shutil.copyfileobj(source, kept)
    return token


def kept_upload(token: str) -> Path:
    path = _folder() / token if TOKEN.fullmatch(token) else None
    if path is None or not path.is_file():
        raise UploadGone("the uploaded file is gone (kept for a day, or until imported): upload it again")
    return path


def forget_upload(token: str) -> None:
    if TOKEN.fullmatch(token):
        (_folder() / token).unlink(missing_ok=True)


def prune_uploads(older_than: float = KEEP_SECONDS) -> None:
    cutoff = time.time() - older_than
    for path in _folder().iterdir():
        if TOKEN.fullmatch(path.name) and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
