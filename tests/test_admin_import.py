from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Permission

from workers_app.models import Sample

pytestmark = pytest.mark.django_db

URL = "/admin/workers_app/corpus/import/"


def upload(name: str, content: str) -> io.BytesIO:
    handle = io.BytesIO(content.encode())
    handle.name = name
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
