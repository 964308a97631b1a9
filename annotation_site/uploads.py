"""An uploaded file as a path on disk, for readers that need one (openpyxl, the corpus and archive readers)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.core.files.uploadedfile import UploadedFile


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
