"""/files/: consolidated workbooks and archives, each section and download only for whom may have it."""

from __future__ import annotations

import os

import pytest

from tests.browser.conftest import make_staff
from tests.helpers import make_samples

pytestmark = pytest.mark.django_db


@pytest.fixture
def data_dir(settings, tmp_path):
    """A DATA_DIR of this test's own, with a secret beside the folders a hostile name would try to reach."""
    settings.DATA_DIR = tmp_path
    settings.ARCHIVES_DIR = tmp_path / "archives"
    (tmp_path / "secret_key").write_text("do not serve me")
    return tmp_path


@pytest.fixture
def consolidator(client, catalogue):
    client.force_login(make_staff("consolidator", "admin_ops.consolidate"))
    return client


@pytest.fixture
def archivist(client, catalogue):
    client.force_login(make_staff("archivist", "admin_ops.create_archive"))
    return client


@pytest.fixture
def consolidation(data_dir, catalogue):
    from admin_ops.services.consolidate import consolidate
    from workers_app.models import Annotator, Domain, Outcome
    from workers_app.runs.current import current_run

    pk = make_samples(1)[0]
    Outcome.objects.create(run=current_run(), sample_id=pk, annotator=Annotator.objects.get(number=1),
                           domain=Domain.objects.get(slug="urgency"), status="ok", labels=["LEVEL_1"],
                           prompt_version=1, started_at="2026-01-01T00:00:00Z")
    made_by = make_staff("maker", "admin_ops.consolidate")
    # In the folder of the consolidations made before runs (tests/test_runs_pages.py covers the runs' folders).
    (data_dir / "consolidated").mkdir()
    return consolidate(data_dir / "consolidated" / "consolidated-20260101-000000.xlsx", actor=made_by)


@pytest.fixture
def archive(data_dir, catalogue):
    from admin_ops.services.archive import create_archive

    return create_archive("nightly-1", actor=make_staff("keeper", "admin_ops.create_archive"))


# ------------------------------------------------------------------------------------------------ who sees what


def test_it_sends_anonymous_visitors_to_the_login_page(client, db):
    for path in ("/files/", "/files/consolidated/x.xlsx", "/files/archives/x"):
        response = client.get(path)
        assert response.status_code == 302 and response.url.startswith("/admin/login/")


def test_staff_without_either_permission_see_why_and_no_section(client, data_dir, consolidation, archive):
    client.force_login(make_staff("plain"))
    html = client.get("/files/").content.decode()
    assert "You may not download consolidations or archives" in html
    assert consolidation.path.name not in html and "nightly-1" not in html


def test_downloads_without_the_permission_are_refused(client, data_dir, consolidation, archive):
    client.force_login(make_staff("reader", "workers_app.view_sample"))
    assert client.get(f"/files/consolidated/{consolidation.path.name}").status_code == 403
    assert client.get("/files/archives/nightly-1").status_code == 403


def test_a_consolidator_sees_workbooks_but_not_archives(consolidator, consolidation, archive):
    html = consolidator.get("/files/").content.decode()
    assert 'id="consolidations"' in html and 'id="archives"' not in html
    assert consolidator.get("/files/archives/nightly-1").status_code == 403


def test_an_archivist_sees_archives_but_not_workbooks(archivist, consolidation, archive):
    html = archivist.get("/files/").content.decode()
    assert "nightly-1" in html and 'id="consolidations"' not in html
    assert archivist.get(f"/files/consolidated/{consolidation.path.name}").status_code == 403


# ------------------------------------------------------------------------------------------------ the lists


def test_each_consolidation_shows_when_who_its_files_and_their_sizes(consolidator, consolidation):
    from audit.models import AuditLog

    made = AuditLog.objects.get(action="consolidate", target=consolidation.path.name)
    response = consolidator.get("/files/")
    (found,) = response.context["consolidations"]
    assert (found.workbook, found.made_by, found.made_at) == (consolidation.path.name, "maker", made.at)
    assert [f.name for f in found.files] == [consolidation.path.name, consolidation.csv_path.name,
                                             consolidation.jsonl_path.name]
    assert found.files[0].size == consolidation.path.stat().st_size
    html = response.content.decode()
    assert f'href="/files/consolidated/{consolidation.path.name}"' in html and ">maker<" in html


def test_a_workbook_nobody_made_here_says_so_and_hidden_temporary_files_are_not_listed(consolidator, data_dir):
    folder = data_dir / "consolidated"
    folder.mkdir()
    (folder / "copied-in.xlsx").write_bytes(b"PK")
    (folder / ".consolidated-x.xlsx.abc.tmp").write_bytes(b"half")
    (folder / "notes.txt").write_text("not a consolidation")
    os.symlink(data_dir / "secret_key", folder / "link.csv")
    response = consolidator.get("/files/")
    assert [c.workbook for c in response.context["consolidations"]] == ["copied-in.xlsx"]
    assert "unknown (not in the audit log)" in response.content.decode()
    for name in (".consolidated-x.xlsx.abc.tmp", "notes.txt", "link.csv"):
        assert consolidator.get(f"/files/consolidated/{name}").status_code == 404


def test_archives_show_who_when_size_and_verification(archivist, archive):
    from admin_ops.services.archive import verify_and_record

    html = archivist.get("/files/").content.decode()
    assert "keeper" in html and "not verified" in html and 'href="/files/archives/nightly-1"' in html
    verify_and_record(archive, actor="test")
    assert "verified OK" in archivist.get("/files/").content.decode()


def test_empty_states(client, data_dir, catalogue):
    client.force_login(make_staff("both", "admin_ops.consolidate", "admin_ops.create_archive"))
    html = client.get("/files/").content.decode()
    assert "No consolidation yet" in html and "No archive yet" in html


# ------------------------------------------------------------------------------------------------ downloads


def test_a_listed_workbook_downloads_as_an_attachment(consolidator, consolidation):
    response = consolidator.get(f"/files/consolidated/{consolidation.path.name}")
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{consolidation.path.name}"'
    assert b"".join(response.streaming_content) == consolidation.path.read_bytes()


def test_an_archive_downloads_as_an_attachment(archivist, archive, settings):
    response = archivist.get("/files/archives/nightly-1")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="nightly-1.tar.gz"'
    assert b"".join(response.streaming_content) == (settings.ARCHIVES_DIR / "nightly-1.tar.gz").read_bytes()


def test_an_archive_whose_file_is_gone_is_404(archivist, archive, settings):
    (settings.ARCHIVES_DIR / archive.file_name).unlink()
    assert archivist.get("/files/archives/nightly-1").status_code == 404


HOSTILE = ["../secret_key", "..%2Fsecret_key", "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "/etc/passwd",
           "secret_key", "x.xlsx%00.csv", "%00", "..", ".", "nope.xlsx", "a" * 400, "%E2%80%AE.xlsx"]


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_workbook_name_is_404(consolidator, consolidation, name):
    assert consolidator.get(f"/files/consolidated/{name}").status_code == 404


@pytest.mark.parametrize("name", [*HOSTILE, "nightly-1.tar.gz", "NIGHTLY-1"])
def test_a_hostile_archive_name_is_404(archivist, archive, name):
    assert archivist.get(f"/files/archives/{name}").status_code == 404


def test_an_archive_row_pointing_outside_the_folder_is_404(archivist, data_dir):
    from admin_ops.models import Archive

    Archive.objects.create(name="forged", file_name="../secret_key", sha256="0" * 64, size=1, created_by="x")
    assert archivist.get("/files/archives/forged").status_code == 404
