from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_superuser("staff", password="pw-for-tests")


@pytest.fixture
def catalogue(db):
    from workers_app.catalogue_defaults import seed_defaults

    seed_defaults(actor="test")


def write_xlsx(path: Path, sheets: dict[str, list[tuple]]) -> Path:
    import openpyxl

    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path
