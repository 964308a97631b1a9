"""Checked rows wait in a temporary file between the check and the write, so memory holds one batch at a time."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO


@dataclass(frozen=True)
class NewSample:
    sheet: str
    row: int
    external_id: str
    text: str


class RowSpool:
    def __init__(self, file: TextIO):
        self._file = file
        self.count = 0

    def add(self, sample: NewSample) -> None:
        self._file.write(json.dumps([sample.sheet, sample.row, sample.external_id, sample.text]) + "\n")
        self.count += 1

    def batches(self, size: int) -> Iterator[list[NewSample]]:
        self._file.seek(0)
        batch: list[NewSample] = []
        for line in self._file:
            batch.append(NewSample(*json.loads(line)))
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch


@contextmanager
def row_spool() -> Iterator[RowSpool]:
    with tempfile.TemporaryFile("w+", encoding="utf-8") as file:  # unlinked at once: nothing is left behind
        yield RowSpool(file)
