"""The set-up pages (/setup/), the job pages (/jobs/) and the run and /files/ buttons that start jobs: who sees
what, what each form does through its service, and what it shows. The jobs' own work is in tests/test_setup_jobs.py
(a real control worker)."""

from __future__ import annotations

import io
import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from django_celery_results.models import TaskResult

from api.jobs import job_status
from api.models import ApiToken
from api.tokens import authenticate_secret, create_token
from audit.models import AuditLog
from tests.browser.conftest import make_staff
from tests.helpers import form_data, make_samples
from workers_app.engine.api_keys import api_key_for, set_api_key
from workers_app.models import Annotator, AnnotatorPrice, Corpus, Domain, Outcome, Sample
from workers_app.redis_client import get_redis

pytestmark = pytest.mark.django_db
KEY = "sk-page-test-0123456789abcdefgh"

PAGES = {  # each page and the permission it needs to be seen at all
    "/setup/corpora/": "workers_app.view_corpus",
    "/setup/annotators/": "workers_app.view_annotator",
    "/setup/annotators/1/": "workers_app.view_annotator",
    "/setup/domains/": "workers_app.view_domain",
    "/setup/domains/urgency/": "workers_app.view_domain",
    "/setup/people/": "admin_ops.manage_people",
    "/setup/tokens/": "api.view_apitoken",
}


@pytest.fixture
def roles(catalogue):
    call_command("seed_defaults")


def logged_in(client: Client, username: str, *permissions: str, role: str | None = None) -> Client:
    user = make_staff(username, *permissions)
    if role:
        user.groups.add(Group.objects.get(name=role))
    client.force_login(user)
    return client


def text(response) -> str:
    return response.content.decode()


def input_value(page: str, element_id: str) -> str:
    """The value of the input with this id."""
    tag = re.search(rf'<input[^>]*id="{element_id}"[^>]*>', page).group(0)
    return re.search(r'value="([^"]*)"', tag).group(1)


# ------------------------------------------------------------------------------------------------ who sees what


@pytest.mark.parametrize("path", [*PAGES, "/setup/"])
def test_anonymous_visitors_go_to_the_login_page(client, catalogue, path):
    response = client.get(path)
    assert response.status_code == 302 and response.url.startswith("/admin/login/")


@pytest.mark.parametrize(("path", "permission"), PAGES.items())
def test_each_page_needs_its_permission_and_a_refusal_is_audited(client, catalogue, path, permission):
    logged_in(client, "plain")
    assert client.get(path).status_code == 403
    assert AuditLog.objects.filter(action="refused", target=path, actor="plain").exists()
    client.force_login(make_staff("allowed", permission))
    assert client.get(path).status_code == 200


def test_the_set_up_page_lists_only_what_each_may_do(client, roles):
    logged_in(client, "vera", role="viewer")
    page = text(client.get("/setup/"))
    assert "/setup/annotators/" in page and "/setup/tokens/" in page and "/setup/people/" not in page
    assert "try one on three posts" not in page  # a viewer sees the settings, changes none
    logged_in(client, "root", "admin_ops.manage_people", role="operator")
    page = text(client.get("/setup/"))
    assert "/setup/people/" in page and "try one on three posts" in page


def test_a_viewer_sees_settings_but_no_form_and_cannot_post_one(client, roles):
    logged_in(client, "vera", role="viewer")
    page = text(client.get("/setup/annotators/1/"))
    assert 'id="settings-form"' not in page and 'id="try-form"' not in page
    assert client.post("/setup/annotators/1/", {"model": "x"}).status_code == 403
    assert client.post("/setup/annotators/1/try", {"domain": "urgency", "posts": "x"}).status_code == 403
    assert client.post("/setup/domains/urgency/", {"action": "save"}).status_code == 403
    assert Annotator.objects.get(number=1).model == "builtin-lexicon-v1"


# ------------------------------------------------------------------------------------------------ annotators


def test_settings_are_saved_through_the_service_with_a_key_and_a_price(client, http_annotator):
    logged_in(client, "olga", "workers_app.view_annotator", "workers_app.change_annotator")
    response = client.post("/setup/annotators/1/", form_data(
        http_annotator, model="gpt-4o-mini", temperature="0", cache_responses="on", request_logprobs="on", api_key=KEY,
        **{"price-valid_from": "2026-02-01", "price-input_per_1k": "0.15", "price-output_per_1k": "0.6",
           "price-currency": "USD"}))

    assert response.status_code == 302, text(response)
    saved = Annotator.objects.get(number=1)
    assert (saved.model, saved.cache_responses, saved.request_logprobs, api_key_for(saved)) == ("gpt-4o-mini", True,
                                                                                               True, KEY)
    assert AnnotatorPrice.objects.filter(annotator=saved, currency="USD").count() == 1
    page = text(client.get("/setup/annotators/1/"))
    assert KEY not in page and "Stored key: yes" in page and "0.15 in / 0.6 out USD" in page
    row = AuditLog.objects.get(action="change_annotator")
    assert row.parameters["fields"] == ["cache_responses", "model", "request_logprobs"]
    assert row.parameters["key"] == "replaced"


def test_batch_mode_is_set_in_the_workspace_like_any_setting(client, http_annotator):
    logged_in(client, "olga", "workers_app.view_annotator", "workers_app.change_annotator")
    response = client.post("/setup/annotators/1/", form_data(
        http_annotator, mode="batch", batch_protocol="anthropic", batch_size="250"))
    assert response.status_code == 302, text(response)
    saved = Annotator.objects.get(number=1)
    assert (saved.mode, saved.batch_protocol, saved.batch_size) == ("batch", "anthropic", 250)
    assert AuditLog.objects.get(action="change_annotator").parameters["fields"] == [
        "batch_protocol", "batch_size", "mode"]


def test_the_list_shows_each_annotators_key_state_and_price(client, http_annotator):
    set_api_key(http_annotator, KEY, actor="alice")
    logged_in(client, "vera", "workers_app.view_annotator")
    page = text(client.get("/setup/annotators/"))
    assert 'data-annotator="1"' in page and "stored" in page and KEY not in page


def test_try_it_shows_each_raw_answer_its_parse_tokens_and_latency(client, http_annotator, fake_llm):
    samples = [Sample.objects.get(pk=pk) for pk in make_samples(3, vary=True)]
    fake_llm.content_for = lambda body: "Risk is high. <<LEVEL_3>>"
    logged_in(client, "olga", "workers_app.view_annotator", "workers_app.change_annotator")

    response = client.post("/setup/annotators/1/try", {
        "domain": "urgency", "posts": ", ".join(s.external_id for s in samples)})

    page = text(response)
    assert response.status_code == 200 and page.count('data-ok="yes"') == 3
    assert page.count("Risk is high. &lt;&lt;LEVEL_3&gt;&gt;") == 3 and "100 in, 12 out" in page
    assert re.search(r"<dt>Latency</dt><dd>\d+ ms</dd>", page)
    assert Outcome.objects.count() == 0 and len(fake_llm.requests) == 3


# ------------------------------------------------------------------------------------------------ domains


def domain_form(domain: Domain, **changes) -> dict:
    data = {"prompt_template": domain.prompt_template, "seen_version": domain.prompt_version,
            "codes-TOTAL_FORMS": len(domain.codes), "codes-INITIAL_FORMS": len(domain.codes),
            "examples-TOTAL_FORMS": len(domain.few_shot), "examples-INITIAL_FORMS": len(domain.few_shot)}
    for index, code in enumerate(domain.codes):
        data[f"codes-{index}-code"], data[f"codes-{index}-description"] = code["code"], code.get("description", "")
    for index, example in enumerate(domain.few_shot):
        data[f"examples-{index}-message"], data[f"examples-{index}-answer"] = example["message"], example["answer"]
    data.update(changes)
    return data


@pytest.fixture
def editor(client, catalogue) -> Client:
    return logged_in(client, "dora", "workers_app.view_domain", "workers_app.change_domain")


def test_a_review_shows_the_changes_and_the_next_version_without_saving(editor):
    domain = Domain.objects.get(slug="urgency")
    page = text(editor.post("/setup/domains/urgency/", domain_form(
        domain, action="review", prompt_template=domain.prompt_template + "\nBe brief.",
        **{"codes-0-description": "self-help only"})))

    assert "<ins>+Be brief.</ins>" in page and "Save as version 2" in page
    assert "meant <del>self-help: no sign" in page and "now <ins>self-help only</ins>" in page
    assert Domain.objects.get(slug="urgency").prompt_version == 1 and not AuditLog.objects.filter(
        action="change_domain").exists()


def test_saving_makes_the_next_version_and_the_history_shows_it(editor):
    domain = Domain.objects.get(slug="urgency")
    response = editor.post("/setup/domains/urgency/", domain_form(
        domain, action="save", **{"examples-TOTAL_FORMS": 4, "examples-3-message": "I feel a bit low today.",
                                  "examples-3-answer": "<<LEVEL_1>>"}))

    assert response.status_code == 302
    saved = Domain.objects.get(slug="urgency")
    assert saved.prompt_version == 2 and saved.few_shot[-1] == {"message": "I feel a bit low today.",
                                                                 "answer": "<<LEVEL_1>>"}
    page = text(editor.get("/setup/domains/urgency/"))
    assert "Version 1 → 2, by dora" in page and "added: “I feel a bit low today.”" in page
    assert 'id="version">prompt version 2' in page


def test_a_review_without_changes_offers_no_save(editor):
    page = text(editor.post("/setup/domains/urgency/", domain_form(Domain.objects.get(slug="urgency"),
                                                                   action="save")))
    assert "Nothing changed" in page and "Save as version" not in page
    assert Domain.objects.get(slug="urgency").prompt_version == 1


def test_a_review_after_someone_else_saved_is_against_their_version(editor):
    stale = domain_form(Domain.objects.get(slug="intensity"), action="review")
    domain = Domain.objects.get(slug="intensity")
    domain.prompt_template += "\nTheirs."
    domain.save()

    page = text(editor.post("/setup/domains/intensity/", {**stale, "prompt_template": stale["prompt_template"]
                                                          + "\nMine."}))

    assert "Version 2 was saved since you opened version 1" in page
    assert "<del>-Theirs.</del>" in page and "<ins>+Mine.</ins>" in page
    assert 'name="seen_version" value="2"' in page


# ------------------------------------------------------------------------------------------------ people


@pytest.fixture
def manager(client, roles) -> Client:
    return logged_in(client, "olga", "admin_ops.manage_people", role="operator")


def test_adding_a_person_shows_their_invitation_link_once_and_they_can_then_log_in(manager, roles):
    page = text(manager.post("/setup/people/", {"username": "rita", "email": "", "role": "reviewer"}))
    path = input_value(page, "invitation-link").removeprefix("http://testserver")
    assert path.startswith("/welcome/")
    rita = get_user_model().objects.get(username="rita")
    assert rita.is_staff and list(rita.groups.values_list("name", flat=True)) == ["reviewer"]
    assert "/welcome/" not in text(manager.get("/setup/people/"))  # shown once

    guest = Client()
    form_page = guest.get(path, follow=True)
    assert "Welcome, rita" in text(form_page)
    done = guest.post(form_page.redirect_chain[-1][0], {"new_password1": "correct horse battery",
                                                        "new_password2": "correct horse battery"})
    assert done.status_code == 302 and done.url == "/welcome/done/"
    login = guest.post("/admin/login/?next=/review/", {"username": "rita", "password": "correct horse battery"})
    assert login.status_code == 302 and guest.get("/review/").status_code == 200
    assert AuditLog.objects.filter(action="user_change", target="user rita",
                                   parameters__edit="password set from an invitation").exists()
    assert "does not work" in text(Client().get(path, follow=True))  # used once


def test_the_people_page_shows_who_has_what(manager):
    user = get_user_model().objects.create_user("gwen", password="pw-for-tests")
    user.groups.add(Group.objects.get(name="viewer"), Group.objects.create(name="clinic-a"))
    page = text(manager.get("/setup/people/"))
    row = re.search(r'<tr data-person="gwen">(.*?)</tr>', page, re.DOTALL).group(1)
    assert ">viewer<" in row and "groups clinic-a" in row and "active" in row


def test_roles_and_deactivation_are_changed_from_the_list(manager):
    rita = get_user_model().objects.create_user("rita", password="pw-for-tests", is_staff=True)
    assert manager.post(f"/setup/people/{rita.pk}/role", {"role": "viewer"}).status_code == 302
    assert manager.post(f"/setup/people/{rita.pk}/active", {"active": "no"}).status_code == 302
    rita.refresh_from_db()
    assert list(rita.groups.values_list("name", flat=True)) == ["viewer"] and not rita.is_active
    assert [r.action for r in AuditLog.objects.filter(target="user rita").order_by("id")
            if r.action in ("change_role", "deactivate_person")] == ["change_role", "deactivate_person"]


# ------------------------------------------------------------------------------------------------ tokens


def test_a_token_is_shown_once_works_and_is_revoked_from_the_list(client, roles):
    logged_in(client, "rita", role="reviewer")
    page = text(client.post("/setup/tokens/", {"name": "ci-nightly", "days": "30"}))
    secret = input_value(page, "token-secret")
    assert authenticate_secret(secret).name == "ci-nightly"
    listed = text(client.get("/setup/tokens/"))
    assert secret not in listed and 'data-token="ci-nightly"' in listed

    token = ApiToken.objects.get(name="ci-nightly")
    assert client.post(f"/setup/tokens/{token.pk}/revoke").status_code == 302
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    assert AuditLog.objects.filter(action="revoke_api_token", actor="rita").exists()


def test_staff_see_and_revoke_only_their_own_tokens_a_superuser_anyones(client, roles, staff):
    theirs = create_token(staff, name="root-script", expires_at=timezone.now() + timezone.timedelta(days=3),
                          actor=staff).token
    logged_in(client, "rita", role="reviewer")
    assert "root-script" not in text(client.get("/setup/tokens/"))
    assert client.post(f"/setup/tokens/{theirs.pk}/revoke").status_code == 404
    assert ApiToken.objects.get(pk=theirs.pk).revoked_at is None

    client.force_login(staff)
    mine = create_token(get_user_model().objects.get(username="rita"), name="ci",
                        expires_at=timezone.now() + timezone.timedelta(days=3), actor=staff).token
    page = text(client.get("/setup/tokens/"))
    assert "root-script" in page and 'data-token="ci"' in page and 'name="owner"' in page
    assert client.post(f"/setup/tokens/{mine.pk}/revoke").status_code == 302
    assert ApiToken.objects.get(pk=mine.pk).revoked_at is not None


def test_a_superuser_makes_a_token_for_someone_else(client, roles, staff):
    rita = make_staff("rita", "workers_app.view_worker")  # an account allowed in: it holds a permission
    client.force_login(staff)
    client.post("/setup/tokens/", {"name": "for-rita", "days": "7", "owner": rita.pk})
    assert ApiToken.objects.get(name="for-rita").user == rita


# ------------------------------------------------------------------------------------------------ corpora


def upload(name: str, data: bytes) -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = name
    return handle


@pytest.fixture
def importer(client, catalogue) -> Client:
    return logged_in(client, "ida", "workers_app.view_corpus", "workers_app.add_corpus")


def test_an_upload_is_previewed_with_its_columns_and_first_rows_and_nothing_is_imported(importer):
    response = importer.post("/setup/corpora/", {"file": upload("posts.csv", (
        "post_id,body,lang\n" + "".join(f"P{i},post number {i},en\n" for i in range(8))).encode())})
    assert response.status_code == 302
    preview = text(importer.get(response.url))
    assert "<code>post_id</code>, <code>body</code>, <code>lang</code>" in preview
    assert "post number 4" in preview and "post number 5" not in preview  # the first five rows only
    chosen = text(importer.post(response.url, {"id_column": "post_id", "text_column": "lang"}))
    assert chosen.count("<td class=\"text-cell\">en</td>") == 5
    assert Corpus.objects.count() == 0 and Sample.objects.count() == 0


def test_checking_or_importing_starts_a_job_for_the_control_worker(importer):
    token = importer.post("/setup/corpora/", {"file": upload("posts.csv", b"ID,Text\n1,hello\n")}).url.split("/")[-2]
    response = importer.post(f"/setup/corpora/{token}/start", {"action": "check", "id_column": "",
                                                                "text_column": "Text"})
    assert response.status_code == 302 and response.url.startswith("/jobs/import/")
    job = response.url.split("/")[3]
    found = job_status("import", job)
    assert found["status"] == "queued" and found["note"]["check_only"] is True
    assert found["note"]["options"]["text_column"] == "Text" and found["note"]["file"] == "posts.csv"
    page = text(importer.get(response.url))
    assert 'data-status="queued"' in page and "no control worker is running" in page and token not in page
    assert Corpus.objects.count() == 0


def test_a_file_that_cannot_be_read_is_named_and_forgotten(importer, settings):
    response = importer.post("/setup/corpora/", {"file": upload("posts.xlsx", b"not a zip")}, follow=True)
    assert "Nothing was imported: posts.xlsx: not an xlsx workbook" in text(response)
    token = response.redirect_chain[0][0].split("/")[-2]
    assert len(token) == 32 and not (settings.DATA_DIR / "uploads" / token).exists()


# ------------------------------------------------------------------------------------------------ jobs


def test_the_run_page_and_files_offer_consolidate_and_archive_to_whom_may(client, catalogue):
    logged_in(client, "ron", "workers_app.view_run")
    assert 'id="consolidate-form"' not in text(client.get("/runs/default/"))
    logged_in(client, "cora", "workers_app.view_run", "admin_ops.consolidate", "admin_ops.create_archive")
    page = text(client.get("/runs/default/"))
    assert 'id="consolidate-form"' in page and 'id="archive-form"' in page
    files = text(client.get("/files/"))
    assert '<option value="default" selected>default (current)</option>' in files and 'id="archive-form"' in files


def test_consolidate_and_archive_start_jobs_that_their_pages_follow(client, catalogue):
    logged_in(client, "cora", "admin_ops.consolidate", "admin_ops.create_archive")
    started = client.post("/jobs/consolidate", {"run": "default"})
    assert started.status_code == 302
    kind, job = started.url.split("/")[2:4]
    assert kind == "consolidation" and job_status(kind, job)["run"] == "default"
    live = client.get(f"/jobs/consolidation/{job}/live").json()
    assert live == {"status": "queued", "progress": None, "error": ""}

    archive = client.post("/jobs/archive", {"name": "before-edit", "run": ""})
    assert job_status("archive", archive.url.split("/")[3])["note"]["name"] == "before-edit"
    assert len(get_redis().keys("*api:archive:*")) == 1


def test_a_job_page_needs_the_permission_of_its_kind(client, catalogue):
    logged_in(client, "cora", "admin_ops.consolidate")
    job = client.post("/jobs/consolidate", {"run": "default"}).url.split("/")[3]
    logged_in(client, "ida", "workers_app.add_corpus")
    assert client.get(f"/jobs/consolidation/{job}/").status_code == 403
    assert client.get(f"/jobs/import/{job}/").status_code == 404  # not a job of that kind
    assert client.get(f"/jobs/teleport/{job}/").status_code == 404


def test_a_job_page_shows_a_finished_jobs_result(client, catalogue):
    """The result as the task returns it (the task itself runs in tests/test_setup_jobs.py)."""
    logged_in(client, "ida", "workers_app.view_corpus", "workers_app.add_corpus")
    token = client.post("/setup/corpora/", {"file": upload("p.csv", b"ID,Text\n1,\n")}).url.split("/")[-2]
    job = client.post(f"/setup/corpora/{token}/start", {"action": "import"}).url.split("/")[3]
    TaskResult.objects.create(task_id=job, status="SUCCESS", result=json.dumps(
        {"rejected": True, "problems": ["p.csv, row 2, field 'text': empty text"], "problem_count": 1}),
        content_type="application/json", content_encoding="utf-8")

    page = text(client.get(f"/jobs/import/{job}/"))

    assert 'data-status="done"' in page and "1 problem; nothing was imported" in page
    assert "<li data-problem>p.csv, row 2, field &#x27;text&#x27;: empty text</li>" in page
    assert "Import only the valid rows" in page and f'action="/setup/corpora/{token}/start"' in page
