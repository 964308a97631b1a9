"""Hostile input to the workspace's set-up pages and job buttons: bad files, bad URLs through the outbound policy, a
key moved to another server, forged form fields, escalation and requests without the permission or the CSRF token.
Each is refused with a reason that names the field, changes nothing, and a refusal that reached a service or the
permission check leaves an audit row."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.forms.models import model_to_dict
from django.test import Client, override_settings
from django.utils import timezone

from admin_ops.models import Archive
from admin_ops.services.people import add_person, invitation
from api.models import ApiToken
from api.tokens import create_token
from audit.models import AuditLog
from tests.browser.conftest import make_staff
from tests.helpers import form_data, make_samples
from tests.hostile.conftest import assert_failed_audit
from workers_app.engine.api_keys import api_key_for, set_api_key
from workers_app.local_profile import use_local_gemma
from workers_app.models import Annotator, Corpus, Domain, Sample
from workers_app.redis_client import get_redis

pytestmark = pytest.mark.django_db
KEY = "sk-hostile-setup-0123456789abcdef"


def logged_in(client: Client, *permissions: str, username: str = "hostile") -> Client:
    client.force_login(make_staff(username, *permissions))
    return client


def text(response) -> str:
    return response.content.decode()


def upload(name: str, data: bytes) -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = name
    return handle


def no_jobs() -> bool:
    return not get_redis().keys("*api:import:*") + get_redis().keys("*api:archive:*") + get_redis().keys(
        "*api:consolidation:*")


# ------------------------------------------------------------------------------------------------ corpus files


@pytest.fixture
def importer(client, catalogue) -> Client:
    return logged_in(client, "workers_app.view_corpus", "workers_app.add_corpus")


def _zip_bomb() -> bytes:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (20 * 1024 * 1024))
    return data.getvalue()


def test_an_empty_file_is_refused_by_the_upload_form(importer, unchanged):
    response = importer.post("/setup/corpora/", {"file": upload("posts.csv", b"")})
    assert response.status_code == 400 and "The submitted file is empty" in text(response)
    unchanged()


@pytest.mark.parametrize(("name", "data", "reason"), [
    pytest.param("posts.exe", b"MZ\x90\x00", "not a spreadsheet", id="not-a-spreadsheet"),
    pytest.param("posts.xlsx", b"ID,Text\n1,hello\n", "not an xlsx workbook", id="csv-named-xlsx"),
    pytest.param("posts.xlsx", _zip_bomb(), "refused as a possible zip bomb", id="zip-bomb"),
    pytest.param("posts.csv", b"ID,Text\n1,caf\xe9\n", "not UTF-8 text", id="latin-1"),
    pytest.param("posts.jsonl", b"[1, 2]\n", "each line must be a JSON object", id="jsonl-array"),
])
def test_a_bad_file_is_named_and_nothing_is_imported(importer, settings, name, data, reason):
    settings.IMPORT_MAX_BYTES = 1024 * 1024  # a zip bomb's 20 MB of zeros expand past 10 x this
    response = importer.post("/setup/corpora/", {"file": upload(name, data)}, follow=True)
    page = text(response)
    if "Preview of" in page:  # readable enough to preview: every row's problem comes with the check
        assert reason in page
    else:
        assert reason in page and "Nothing was imported" in page
        token = response.redirect_chain[0][0].split("/")[-2]
        assert not (settings.DATA_DIR / "uploads" / token).exists()
    assert Corpus.objects.count() == 0 and Sample.objects.count() == 0 and no_jobs()


@pytest.mark.parametrize("token", ["..%2F..%2Fsecret_key", "0" * 32, "secret_key", "%00" * 4])
def test_an_upload_that_is_not_this_sessions_is_not_found(importer, token):
    assert importer.get(f"/setup/corpora/{token}/").status_code == 404
    assert importer.post(f"/setup/corpora/{token}/start", {"action": "import"}).status_code == 404
    assert no_jobs()


def test_another_sessions_upload_is_not_found(importer, catalogue):
    url = importer.post("/setup/corpora/", {"file": upload("a.csv", b"ID,Text\n1,hi\n")}).url
    other = logged_in(Client(), "workers_app.view_corpus", "workers_app.add_corpus", username="other")
    assert other.get(url).status_code == 404
    assert other.post(url + "start", {"action": "import"}).status_code == 404
    assert no_jobs()


@pytest.mark.parametrize("fields", [
    pytest.param({"action": "import", "id_column": "password"}, id="a-column-the-file-lacks"),
    pytest.param({"action": "import", "sheets": "Secret"}, id="a-sheet-a-csv-lacks"),
    pytest.param({"action": "delete-everything"}, id="an-unknown-action"),
    pytest.param({}, id="no-action"),
])
def test_a_forged_choice_starts_nothing(importer, fields):
    url = importer.post("/setup/corpora/", {"file": upload("a.csv", b"ID,Text\n1,hi\n")}).url
    response = importer.post(url + "start", fields, follow=True)
    assert "Choose the sheets and columns again" in text(response) and no_jobs()


def test_starting_an_import_needs_a_post_its_permission_and_the_csrf_token(catalogue, client):
    importer = logged_in(Client(enforce_csrf_checks=True), "workers_app.view_corpus", "workers_app.add_corpus")
    assert importer.post("/setup/corpora/", {"file": upload("a.csv", b"ID,Text\n1,hi\n")}).status_code == 403
    viewer = logged_in(client, "workers_app.view_corpus", username="viewer")
    assert viewer.post("/setup/corpora/", {"file": upload("a.csv", b"ID,Text\n1,hi\n")}).status_code == 403
    assert viewer.get("/setup/corpora/0123/").status_code == 403
    [refused] = AuditLog.objects.filter(action="refused", actor="viewer")  # one row per client and period
    assert refused.tally.count == 2
    assert logged_in(Client(), "workers_app.view_corpus", "workers_app.add_corpus", username="getter").get(
        "/setup/corpora/" + "0" * 32 + "/start").status_code == 405


# ------------------------------------------------------------------------------------------------ annotators


@pytest.fixture
def operator(client, catalogue) -> Client:
    return logged_in(client, "workers_app.view_annotator", "workers_app.change_annotator")


def field_errors(response, field: str) -> str:
    assert response.status_code == 400, "the form was accepted"
    form = response.context["form"]
    return " ".join(form.errors.get(field, []))


@pytest.mark.parametrize(("url", "reason"), [
    pytest.param("file:///etc/passwd", "Enter a valid URL", id="file"),
    pytest.param("gopher://evil.example/x", "Enter a valid URL", id="gopher"),
    pytest.param("http://user:hunter2@example.com/v1", "credentials", id="credentials"),
    pytest.param("http://169.254.169.254/latest/meta-data", "169.254.169.254 is a link-local address",
                 id="metadata"),
    pytest.param("http://127.0.0.1:6379/", "a loopback address", id="redis"),
    pytest.param("http://2130706433/v1", "Enter a valid URL", id="decimal-loopback"),
    pytest.param("http://localhost:8000/v1", "a loopback address", id="localhost"),
    pytest.param("http://[::1]:8000/v1", "a loopback address", id="ipv6-loopback"),
    pytest.param("http://[::ffff:127.0.0.1]/v1", "a loopback address", id="mapped-loopback"),
    pytest.param("http://10.0.0.8/v1", "a private address", id="private"),
    pytest.param("https://x.example/v1?key=sk-abcdefghijklmnop0123", "looks like an API key", id="key-in-url"),
])
@override_settings(OUTBOUND_ALLOW=[])
def test_a_base_url_the_outbound_policy_refuses_is_named_and_not_saved(operator, unchanged, url, reason):
    annotator = Annotator.objects.get(number=1)
    response = operator.post("/setup/annotators/1/", form_data(annotator, backend="openai_compatible",
                                                                     base_url=url))
    assert reason in field_errors(response, "base_url")
    assert "hunter2" not in text(response).split('id="settings-form"')[0]
    unchanged()


@pytest.mark.parametrize(("changes", "field", "reason"), [
    pytest.param({"api_key": "has spaces in it"}, "api_key", "8 to 500 printable characters", id="key-spaces"),
    pytest.param({"api_key_env": "SECRET_KEY"}, "api_key_env", "starts with LLM_KEY_", id="env-not-a-key-var"),
    pytest.param({"api_key_env": "DATABASE_URL"}, "api_key_env", "starts with LLM_KEY_", id="env-database"),
    pytest.param({"model": KEY}, "model", "looks like an API key", id="key-as-model"),
    pytest.param({"temperature": "NaN"}, "temperature", "Enter a number", id="nan"),
    pytest.param({"temperature": "7"}, "temperature", "less than or equal to 2.0", id="hot"),
    pytest.param({"requests_per_minute": "0"}, "requests_per_minute", "greater than or equal to 1", id="rpm"),
    pytest.param({"timeout_seconds": "1e9"}, "timeout_seconds", "less than or equal to 600", id="timeout"),
    pytest.param({"budget": "-1"}, "budget", "cannot be negative", id="budget"),
    pytest.param({"cache_responses": "on", "temperature": "0.7", "backend": "openai_compatible",
                  "base_url": "https://api.example.com/v1"}, "cache_responses", "needs temperature 0", id="cache-hot"),
    pytest.param({"backend": "shell"}, "backend", "Select a valid choice", id="backend"),
])
def test_a_bad_setting_is_named_and_nothing_is_saved(operator, unchanged, changes, field, reason):
    annotator = Annotator.objects.get(number=1)
    response = operator.post("/setup/annotators/1/", form_data(annotator, **changes))
    assert reason in field_errors(response, field)
    assert KEY not in text(response).split('<form')[0]
    unchanged()


@pytest.fixture
def keyed(http_annotator, operator) -> Annotator:
    set_api_key(http_annotator, KEY, actor="alice")
    return Annotator.objects.get(pk=http_annotator.pk)


def test_a_stored_key_is_not_moved_to_another_server_by_a_base_url_change(keyed, operator, unchanged):
    response = operator.post("/setup/annotators/1/", form_data(keyed, base_url="https://attacker.example/v1"))
    assert "not sent to https://attacker.example unless you type the key again" in field_errors(response, "base_url")
    assert KEY not in text(response)
    unchanged()


def test_the_admin_keeps_the_same_key_rule(keyed, staff, unchanged):
    admin = Client()
    admin.force_login(staff)
    values = {name: value for name, value in model_to_dict(keyed).items() if value not in (None, False)}
    response = admin.post(f"/admin/workers_app/annotator/{keyed.pk}/change/", {
        **values, "enabled": "on", "base_url": "https://attacker.example/v1", "prices-TOTAL_FORMS": 0,
        "prices-INITIAL_FORMS": 0})
    errors = " ".join(response.context["adminform"].form.errors.get("base_url", []))
    assert response.status_code == 200 and "not sent to https://attacker.example" in errors
    assert Annotator.objects.get(pk=keyed.pk).base_url == keyed.base_url


def test_switching_to_the_local_model_leaves_the_stored_key_behind(keyed):
    use_local_gemma(keyed, actor="alice")
    assert api_key_for(Annotator.objects.get(pk=keyed.pk)) == ""
    assert AuditLog.objects.get(action="use_local_gemma").parameters["stored_key_removed"] is True


def test_a_stored_key_moves_only_when_typed_again(keyed, operator):
    response = operator.post("/setup/annotators/1/", form_data(
        keyed, base_url="https://api.new.example/v1", api_key="sk-the-new-one-0123456789abcdef"))
    assert response.status_code == 302
    assert Annotator.objects.get(pk=keyed.pk).base_url == "https://api.new.example/v1"


@pytest.mark.parametrize(("prices", "field", "reason"), [
    pytest.param({"price-input_per_1k": "0.5"}, "valid_from", "Give every part", id="partial"),
    pytest.param({"price-valid_from": "2026-01-01", "price-input_per_1k": "-1", "price-output_per_1k": "1",
                  "price-currency": "USD"}, "input_per_1k", "greater than or equal to 0", id="negative"),
    pytest.param({"price-valid_from": "2026-01-01", "price-input_per_1k": "1", "price-output_per_1k": "1",
                  "price-currency": "usd"}, "currency", "three-letter", id="currency"),
    pytest.param({"price-valid_from": "01/02/2026x", "price-input_per_1k": "1", "price-output_per_1k": "1",
                  "price-currency": "USD"}, "valid_from", "Enter a valid date", id="date"),
])
def test_a_bad_price_is_named_and_nothing_is_saved(operator, unchanged, prices, field, reason):
    response = operator.post("/setup/annotators/1/", form_data(Annotator.objects.get(number=1), **prices))
    assert response.status_code == 400
    assert reason in " ".join(response.context["price"].errors.get(field, []))
    unchanged()


@pytest.mark.parametrize(("fields", "reason"), [
    pytest.param({"domain": "urgency", "posts": "NO-SUCH-POST"}, "No post with the id 'NO-SUCH-POST'", id="unknown"),
    pytest.param({"domain": "urgency", "posts": "a b c d"}, "Give 1 to 3 post ids (got 4)", id="four"),
    pytest.param({"domain": "urgency", "posts": " , "}, "Give 1 to 3 post ids (got 0)", id="none"),
    pytest.param({"domain": "../../etc", "posts": "x"}, "Select a valid choice", id="domain"),
    pytest.param({"domain": "urgency", "posts": "x" * 601}, "at most 600 characters", id="long"),
])
def test_a_bad_trial_sends_nothing(http_annotator, fake_llm, operator, fields, reason):
    make_samples(1)
    response = operator.post("/setup/annotators/1/try", fields)
    assert response.status_code == 400 and reason in text(response).replace("&#x27;", "'")
    assert fake_llm.requests == [] and not AuditLog.objects.filter(action="try_annotator").exists()


def test_a_trial_whose_key_variable_is_missing_says_so(http_annotator, fake_llm, operator):
    http_annotator.api_key_env = "LLM_KEY_NOT_SET_ANYWHERE"
    http_annotator.save()
    sample = Sample.objects.get(pk=make_samples(1)[0])
    response = operator.post("/setup/annotators/1/try", {"domain": "urgency", "posts": sample.external_id})
    assert response.status_code == 200 and "LLM_KEY_NOT_SET_ANYWHERE" in text(response)
    assert 'data-field="error"' in text(response) and fake_llm.requests == []


def test_an_unknown_annotator_is_not_found(operator):
    assert operator.get("/setup/annotators/99/").status_code == 404
    assert operator.post("/setup/annotators/99/try", {}).status_code == 404


# ------------------------------------------------------------------------------------------------ domains


@pytest.fixture
def editor(client, catalogue) -> Client:
    return logged_in(client, "workers_app.view_domain", "workers_app.change_domain")


def domain_form(domain: Domain, **changes) -> dict:
    data = {"prompt_template": domain.prompt_template, "seen_version": domain.prompt_version, "action": "save",
            "codes-TOTAL_FORMS": len(domain.codes), "codes-INITIAL_FORMS": 0,
            "examples-TOTAL_FORMS": len(domain.few_shot), "examples-INITIAL_FORMS": 0}
    for index, code in enumerate(domain.codes):
        data[f"codes-{index}-code"], data[f"codes-{index}-description"] = code["code"], code.get("description", "")
    for index, example in enumerate(domain.few_shot):
        data[f"examples-{index}-message"], data[f"examples-{index}-answer"] = example["message"], example["answer"]
    return {**data, **changes}


@pytest.mark.parametrize(("changes", "reason"), [
    pytest.param({"prompt_template": "Rate this post."}, "must contain {text}", id="no-post"),
    pytest.param({"codes-0-code": "LEVEL 0; DROP TABLE"}, "the code must be 1-32 letters", id="bad-code"),
    pytest.param({"codes-1-code": "LEVEL_0"}, "appears twice", id="duplicate-code"),
    pytest.param({"codes-0-code": "", "codes-0-description": "orphan meaning"}, "Give the code", id="orphan"),
    pytest.param({"examples-0-answer": "LEVEL_0 without a marker"}, "with a &lt;&lt;...&gt;&gt; marker",
                 id="example-marker"),
    pytest.param({"examples-0-answer": ""}, "needs a message and an answer", id="example-half"),
    pytest.param({"codes-TOTAL_FORMS": "100000"}, "Please submit at most 100 forms", id="too-many-rows"),
    pytest.param({"codes-TOTAL_FORMS": "-5"}, "A coded domain needs at least one code", id="minus"),
    pytest.param({"seen_version": "0"}, "greater than or equal to 1", id="version-0"),
    pytest.param({"seen_version": "1e3"}, "Enter a whole number", id="version-float"),
    pytest.param({"codes-0-description": "x" * 501}, "at most 500 characters", id="long-meaning"),
])
def test_a_bad_domain_edit_is_named_and_saves_nothing(editor, unchanged, changes, reason):
    response = editor.post("/setup/domains/urgency/", domain_form(Domain.objects.get(slug="urgency"), **changes))
    assert response.status_code == 400 and reason in text(response)
    unchanged()
    assert not AuditLog.objects.filter(action="change_domain").exists()


def test_a_save_over_a_version_saved_meanwhile_is_refused_and_audited(editor):
    form = domain_form(Domain.objects.get(slug="urgency"), prompt_template="Mine: {codes} {text}")
    domain = Domain.objects.get(slug="urgency")
    domain.prompt_template = "Theirs: {codes} {text}"
    domain.save()

    response = editor.post("/setup/domains/urgency/", form)

    assert response.status_code == 409 and "saved since you opened version 1" in text(response)
    assert Domain.objects.get(slug="urgency").prompt_template == "Theirs: {codes} {text}"
    assert_failed_audit("change_domain", mentioning="saved since you opened version 1")


@pytest.mark.parametrize("slug", ["nope", "%00", "a" * 300])
def test_an_unknown_domain_is_not_found(editor, slug):
    assert editor.get(f"/setup/domains/{slug}/").status_code == 404


# ------------------------------------------------------------------------------------------------ people


@pytest.fixture
def roles(catalogue):
    call_command("seed_defaults")


@pytest.fixture
def manager(client, roles) -> Client:
    user = make_staff("olga", "admin_ops.manage_people")
    user.groups.add(Group.objects.get(name="reviewer"))
    client.force_login(user)
    return client


@pytest.mark.parametrize(("fields", "reason"), [
    pytest.param({"username": "rita smith", "role": "viewer"}, "Enter a valid username", id="space"),
    pytest.param({"username": "rita\u202e", "role": "viewer"}, "Enter a valid username", id="bidi"),
    pytest.param({"username": "r" * 151, "role": "viewer"}, "at most 150 characters", id="long"),
    pytest.param({"username": "rita", "role": "superuser"}, "Select a valid choice", id="superuser"),
    pytest.param({"username": "rita", "role": "viewer", "email": "not-an-email"}, "Enter a valid email", id="email"),
    pytest.param({"username": "olga", "role": "viewer"}, "exists already", id="taken"),
    pytest.param({"username": "OLGA", "role": "viewer"}, "exists already", id="taken-in-another-case"),
])
def test_a_bad_person_is_named_and_not_added(manager, unchanged, fields, reason):
    response = manager.post("/setup/people/", {"email": "", **fields})
    assert response.status_code == 400 and reason in text(response).replace("&#x27;", "'")
    unchanged()


def test_no_one_adds_a_role_beyond_their_own(manager, unchanged):
    response = manager.post("/setup/people/", {"username": "mallory", "role": "operator", "email": ""})
    assert response.status_code == 403
    unchanged()
    assert_failed_audit("add_person", mentioning="may not give the operator role")


def test_no_one_promotes_someone_beyond_their_own_role_or_changes_a_superuser(manager, staff):
    victor = get_user_model().objects.create_user("victor", is_staff=True)
    assert manager.post(f"/setup/people/{victor.pk}/role", {"role": "operator"}).status_code == 403
    assert manager.post(f"/setup/people/{staff.pk}/active", {"active": "no"}).status_code == 403
    assert get_user_model().objects.get(pk=staff.pk).is_active
    assert not victor.groups.exists()
    assert_failed_audit("change_role", mentioning="may not give the operator role")
    assert_failed_audit("deactivate_person", mentioning="only a superuser")


def test_no_one_changes_their_own_account(manager):
    me = get_user_model().objects.get(username="olga")
    response = manager.post(f"/setup/people/{me.pk}/active", {"active": "no"}, follow=True)
    assert "you cannot change your own account" in text(response)
    assert get_user_model().objects.get(pk=me.pk).is_active


@pytest.mark.parametrize("path", ["/setup/people/", "/setup/people/1/role", "/setup/people/1/active",
                                  "/setup/people/1/invite"])
def test_people_pages_need_their_permission(client, roles, path):
    operator = make_staff("oscar")
    operator.groups.add(Group.objects.get(name="operator"))
    client.force_login(operator)
    response = client.post(path, {"username": "eve", "role": "operator", "active": "no"})
    assert response.status_code == 403 and not get_user_model().objects.filter(username="eve").exists()
    assert AuditLog.objects.filter(action="refused", actor="oscar", target=path).exists()


@pytest.mark.parametrize("link", ["/welcome/MQ/forged-token/", "/welcome/%FF%FE/abc/", "/welcome/OTk5OTk/x-y/"])
def test_a_forged_invitation_link_does_not_work(roles, link):
    assert "This link does not work" in text(Client().get(link, follow=True))


def test_an_invitation_refuses_a_weak_password_and_sets_none(manager, roles):
    rita = add_person("rita", role="viewer", actor="system")
    guest = Client()
    form = guest.get("/welcome/{}/{}/".format(*invitation(rita)), follow=True)
    response = guest.post(form.redirect_chain[-1][0], {"new_password1": "rita", "new_password2": "rita"})
    assert "too short" in text(response) or "too similar" in text(response)
    assert not get_user_model().objects.get(pk=rita.pk).has_usable_password()


# ------------------------------------------------------------------------------------------------ tokens


@pytest.fixture
def reviewer(client, roles) -> Client:
    user = make_staff("rita")
    user.groups.add(Group.objects.get(name="reviewer"))
    client.force_login(user)
    return client


@pytest.mark.parametrize(("fields", "reason"), [
    pytest.param({"name": "ci", "days": "0"}, "greater than or equal to 1", id="zero-days"),
    pytest.param({"name": "ci", "days": "367"}, "less than or equal to 366", id="too-long"),
    pytest.param({"name": "ci", "days": "1e3"}, "Enter a whole number", id="float"),
    pytest.param({"name": "n" * 61, "days": "3"}, "at most 60 characters", id="long-name"),
    pytest.param({"name": "", "days": "3"}, "This field is required", id="no-name"),
])
def test_a_bad_token_request_is_named_and_makes_none(reviewer, unchanged, fields, reason):
    response = reviewer.post("/setup/tokens/", fields)
    assert response.status_code == 400 and reason in text(response)
    unchanged()


def test_a_token_for_someone_else_cannot_be_forged_by_staff(reviewer, staff):
    reviewer.post("/setup/tokens/", {"name": "borrowed", "days": "3", "owner": staff.pk})
    assert ApiToken.objects.get(name="borrowed").user.username == "rita"  # the owner field is not theirs to set


def test_a_second_token_of_the_same_name_is_refused_and_audited(reviewer):
    reviewer.post("/setup/tokens/", {"name": "ci", "days": "3"})
    response = reviewer.post("/setup/tokens/", {"name": "ci", "days": "3"})
    assert response.status_code == 400 and "already exists" in text(response)
    assert ApiToken.objects.filter(name="ci").count() == 1
    assert_failed_audit("create_api_token")


def test_someone_elses_token_is_not_found_and_not_revoked(reviewer, staff):
    theirs = create_token(staff, name="root", expires_at=timezone.now() + timezone.timedelta(days=1),
                          actor=staff).token
    assert reviewer.post(f"/setup/tokens/{theirs.pk}/revoke").status_code == 404
    assert reviewer.post("/setup/tokens/999999/revoke").status_code == 404
    assert reviewer.get(f"/setup/tokens/{theirs.pk}/revoke").status_code == 405
    assert ApiToken.objects.get(pk=theirs.pk).revoked_at is None


def test_tokens_need_their_permissions(client, catalogue):
    client.force_login(make_staff("plain"))
    assert client.get("/setup/tokens/").status_code == 403
    client.force_login(make_staff("looker", "api.view_apitoken"))
    assert client.post("/setup/tokens/", {"name": "x", "days": "3"}).status_code == 403
    assert not ApiToken.objects.exists()
    assert AuditLog.objects.filter(action="refused", actor="looker").exists()


# ------------------------------------------------------------------------------------------------ jobs


@pytest.fixture
def exporter(client, catalogue) -> Client:
    return logged_in(client, "admin_ops.consolidate", "admin_ops.create_archive")


@pytest.mark.parametrize(("name", "reason"), [
    pytest.param("../../etc/cron.d/x", "use 1-100 letters, digits", id="traversal"),
    pytest.param("", "use 1-100 letters, digits", id="empty"),
    pytest.param("a" * 101, "use 1-100 letters, digits", id="long"),
    pytest.param("-rf", "use 1-100 letters, digits", id="dash"),
    pytest.param("x\x00y", "use 1-100 letters, digits", id="nul"),
])
def test_a_bad_archive_name_starts_no_job(exporter, unchanged, name, reason):
    response = exporter.post("/jobs/archive", {"name": name, "run": ""}, follow=True)
    assert reason in text(response) and no_jobs()
    unchanged()


def test_an_archive_name_taken_starts_no_job(exporter):
    Archive.objects.create(name="nightly", file_name="nightly.tar.gz", sha256="0" * 64, size=1, created_by="x")
    response = exporter.post("/jobs/archive", {"name": "nightly", "run": ""}, follow=True)
    assert "exists already" in text(response) and no_jobs()


@pytest.mark.parametrize("run", ["../etc", "NOPE", "x" * 41, "a\x00b", "missing"])
def test_an_unknown_or_malformed_run_starts_nothing(exporter, run):
    assert exporter.post("/jobs/consolidate", {"run": run}).status_code == 404
    assert exporter.post("/jobs/archive", {"name": "ok-name", "run": run}).status_code == 404
    assert exporter.post("/jobs/consolidate", {}).status_code == 404
    assert no_jobs()


def test_a_redirect_back_stays_on_this_site(exporter):
    response = exporter.post("/jobs/archive", {"name": "", "back": "//evil.example/phish"})
    assert response.url == "/files/"
    response = exporter.post("/jobs/archive", {"name": "", "back": "https://evil.example/"})
    assert response.url == "/files/"


def test_jobs_are_started_by_post_with_the_csrf_token_and_the_permission(catalogue, client):
    assert logged_in(Client(), "admin_ops.consolidate", username="getter").get("/jobs/consolidate").status_code == 405
    strict = logged_in(Client(enforce_csrf_checks=True), "admin_ops.consolidate", username="strict")
    assert strict.post("/jobs/consolidate", {"run": "default"}).status_code == 403
    reader = logged_in(client, "workers_app.view_run", username="reader")
    assert reader.post("/jobs/consolidate", {"run": "default"}).status_code == 403
    assert reader.post("/jobs/archive", {"name": "x", "run": ""}).status_code == 403
    [refused] = AuditLog.objects.filter(action="refused", actor="reader")  # one row per client and period
    assert refused.tally.count == 2
    assert no_jobs()


NOBODYS_JOB = "/jobs/consolidation/00000000-0000-0000-0000-000000000000/"


@pytest.mark.parametrize("path", ["/jobs/consolidation/not-a-uuid/", NOBODYS_JOB, NOBODYS_JOB + "live"])
def test_a_job_nobody_started_is_not_found(exporter, path):
    assert exporter.get(path).status_code == 404
