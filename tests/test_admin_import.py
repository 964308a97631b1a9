from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Permission

from tests.helpers import write_xlsx
from workers_app.models import Sample

pytestmark = pytest.mark.django_db

URL = "/admin/workers_app/corpus/import/"


def upload(name: str, content: str) -> io.BytesIO:
    handle = io.BytesIO(content.encode())
    handle.name = name
    return handle


def upload_file(path) -> io.BytesIO:
    handle = io.BytesIO(path.read_bytes())
    handle.name = path.name
    return handle


def test_staff_with_permission_imports_an_uploaded_csv(client, staff):
    client.force_login(staff)
    response = client.post(URL, {"file": upload("posts.csv", "ID,Text\na,hello\nb,world\n")}, follow=True)
    assert "Imported 2 sample(s)" in response.content.decode()
    assert Sample.objects.count() == 2


def test_a_bad_upload_lists_the_row_and_imports_nothing(client, staff):
    client.force_login(staff)
    response = client.post(URL, {"file": upload("posts.csv", "ID,Text\na,hello\n,orphan\n")})
    assert "row 3, field &#x27;id&#x27;: empty id" in response.content.decode()
    assert Sample.objects.count() == 0


def test_a_large_upload_is_streamed_to_a_temporary_file_imported_and_removed(client, staff, settings, tmp_path):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 64
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    client.force_login(staff)
    rows = "".join(f"r{i},a post that is long enough to go to disk {i}\n" for i in range(50))
    response = client.post(URL, {"file": upload("posts.csv", "ID,Text\n" + rows)}, follow=True)
    assert "Imported 50 sample(s)" in response.content.decode()
    assert list(tmp_path.iterdir()) == []


def test_the_allow_cut_cells_box_imports_a_cut_xlsx_cell_with_a_warning(client, staff, tmp_path):
    path = write_xlsx(tmp_path / "posts.xlsx", {"S": [("ID", "Text"), ("x1", "y" * 40_000)]})
    client.force_login(staff)
    refused = client.post(URL, {"file": upload_file(path)}).content.decode()
    assert "row 2, field &#x27;text&#x27;: exactly 32,767 characters" in refused
    assert "CSV or JSONL" in refused and Sample.objects.count() == 0
    response = client.post(URL, {"file": upload_file(path), "allow_cut_cells": "on"}, follow=True)
    shown = [str(m) for m in response.context["messages"]]
    assert shown[0].startswith("imported as it is: posts.xlsx, sheet 'S', row 2, field 'text': exactly 32,767"), shown
    assert len(Sample.objects.get().text) == 32_767


def test_a_user_without_the_add_corpus_permission_is_refused(client, django_user_model):
    clerk = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_corpus"))
    client.force_login(clerk)
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"file": upload("posts.csv", "ID,Text\na,hello\n")}).status_code == 403
    assert Sample.objects.count() == 0


def test_an_anonymous_visitor_is_sent_to_the_login_page(client):
    response = client.get(URL)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
