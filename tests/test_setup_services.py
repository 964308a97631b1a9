"""The set-up services the workspace and the admin share: annotator settings and their key rules, domain edits and
their versions, trying an annotator, people in roles, the corpus check and preview, and the steps long jobs report."""

from __future__ import annotations

import json
import os
import time
from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from admin_ops.services.archive import create_archive
from admin_ops.services.consolidate import consolidate
from admin_ops.services.people import PeopleRefused, add_person, invitation, people, set_active, set_role
from annotation_site.uploads import UploadGone, keep_upload, kept_upload, prune_uploads
from audit.models import AuditLog
from tests.browser.conftest import make_staff
from tests.fake_llm import Reply
from tests.helpers import make_samples, store_outcome, write_xlsx
from workers_app.catalogue.annotators import KeyChange, NewPrice, save_annotator
from workers_app.catalogue.domains import EditRefused, domain_changes, domain_history, edited_domain, save_domain
from workers_app.catalogue.trial import TrialRefused, try_annotator
from workers_app.engine.api_keys import api_key_for, set_api_key
from workers_app.engine.budget import spent
from workers_app.importing.preview import preview_file
from workers_app.importing.rows import Columns
from workers_app.importing.service import check_corpus, import_corpus
from workers_app.models import (
    Annotator,
    AnnotatorPrice,
    CachedResponse,
    Corpus,
    Domain,
    MalformedAttempt,
    Outcome,
    Sample,
)
from workers_app.models.key_rules import moved_key_problem, url_key_problem
from workers_app.runs.current import current_run

pytestmark = pytest.mark.django_db
KEY = "sk-setup-service-0123456789abcdef"


def rows(action: str, result: str = "ok") -> list[AuditLog]:
    return list(AuditLog.objects.filter(action=action, result=result).order_by("id"))


# ------------------------------------------------------------------------------------------------ annotators


def test_saving_settings_is_one_audited_change_with_a_new_price_version(http_annotator):
    http_annotator.model, http_annotator.requests_per_minute = "a-bigger-model", 120
    save_annotator(http_annotator, changed=["model", "requests_per_minute"], key=KeyChange(new=KEY),
                   price=NewPrice(date(2026, 1, 1), Decimal("0.5"), Decimal("1.5"), "EUR"), actor="alice")

    saved = Annotator.objects.get(pk=http_annotator.pk)
    assert (saved.model, saved.requests_per_minute, api_key_for(saved)) == ("a-bigger-model", 120, KEY)
    price = AnnotatorPrice.objects.get(annotator=saved)
    assert (price.valid_from, price.input_per_1k, price.currency) == (date(2026, 1, 1), Decimal("0.5"), "EUR")
    [row] = rows("change_annotator")
    assert row.parameters == {"fields": ["model", "requests_per_minute"], "key": "replaced",
                              "price": {"valid_from": "2026-01-01", "currency": "EUR"}}
    assert len(rows("set_api_key")) == 1
    assert KEY not in json.dumps(list(AuditLog.objects.values()), default=str)


def test_a_stored_key_does_not_follow_the_base_url_to_another_server(http_annotator):
    set_api_key(http_annotator, KEY, actor="alice")
    http_annotator.refresh_from_db()
    http_annotator.base_url = "https://api.elsewhere.example/v1"

    with pytest.raises(ValidationError) as refused:
        save_annotator(http_annotator, changed=["base_url"], actor="mallory")

    assert "not sent to https://api.elsewhere.example" in refused.value.message_dict["base_url"][0]
    assert Annotator.objects.get(pk=http_annotator.pk).base_url.startswith("http://127.0.0.1")
    [failed] = rows("change_annotator", "failed")
    assert "stored API key was given for http://127.0.0.1" in failed.detail["error"]


@pytest.mark.parametrize("key", [KeyChange(new="sk-the-new-servers-key-0123456789"), KeyChange(remove=True)])
def test_a_new_server_takes_a_key_typed_again_or_none(http_annotator, key):
    set_api_key(http_annotator, KEY, actor="alice")
    http_annotator.refresh_from_db()
    http_annotator.base_url = "https://api.elsewhere.example/v1"

    save_annotator(http_annotator, changed=["base_url"], key=key, actor="alice")

    saved = Annotator.objects.get(pk=http_annotator.pk)
    assert saved.base_url == "https://api.elsewhere.example/v1"
    assert api_key_for(saved) == key.new


def test_the_same_server_under_another_path_keeps_its_key(http_annotator):
    set_api_key(http_annotator, KEY, actor="alice")
    http_annotator.refresh_from_db()
    http_annotator.base_url = http_annotator.base_url.replace("/v1", "/v2/")
    save_annotator(http_annotator, changed=["base_url"], actor="alice")
    assert api_key_for(Annotator.objects.get(pk=http_annotator.pk)) == KEY


def test_the_key_rules_for_urls():
    assert moved_key_problem("https://api.openai.com/v1", "https://API.openai.com:443/v2") is None
    assert "given for https://api.openai.com" in moved_key_problem("https://api.openai.com/v1",
                                                                      "http://api.openai.com/v1")
    assert "given for no base URL" in moved_key_problem("", "https://x.example/v1")
    assert url_key_problem("https://generativelanguage.googleapis.com/v1beta/openai") is None
    assert "looks like an API key" in url_key_problem("https://x.example/v1?key=sk-abcdefghijklmnop0123")
    assert "looks like an API key" in url_key_problem("https://x.example/AIzaSyA1b2C3d4E5f6G7h8I9j0/v1")


def test_a_base_url_carrying_a_key_is_refused_by_the_model(catalogue):
    annotator = Annotator.objects.get(number=2)
    annotator.backend, annotator.base_url = "openai_compatible", "https://x.example/v1?api_key=sk-abcdefghijklmnop0123"
    with pytest.raises(ValidationError) as refused:
        annotator.full_clean()
    assert "looks like an API key" in refused.value.message_dict["base_url"][0]


# ------------------------------------------------------------------------------------------------ domains


def _edited(slug: str, **values) -> tuple[Domain, Domain]:
    domain = Domain.objects.get(slug=slug)
    fields = {"prompt_template": domain.prompt_template, "codes": domain.codes, "few_shot": domain.few_shot, **values}
    return domain, edited_domain(domain, **fields)


def test_the_changes_of_an_edit_name_the_prompt_lines_codes_and_examples(catalogue):
    domain = Domain.objects.get(slug="intensity")
    codes = [dict(c) for c in domain.codes]
    codes[0]["description"] = "self-guided: reading, apps"
    codes.pop()  # INT-5
    codes.append({"code": "INT-6", "description": "inpatient"})
    before, after = _edited("intensity", prompt_template=domain.prompt_template.replace("Codes:", "Choose from:"),
                            codes=codes, few_shot=domain.few_shot[1:] + [{"message": "New", "answer": "<<INT-2>>"}])

    changes = domain_changes(before, after)

    assert changes.prompt[0] == "--- version 1" and "-Codes:" in changes.prompt and "+Choose from:" in changes.prompt
    assert [(c.code, c.kind) for c in changes.codes] == [("INT-1", "meaning"), ("INT-5", "removed"),
                                                         ("INT-6", "added")]
    assert not changes.codes_reordered
    assert changes.examples_removed == domain.few_shot[:1]
    assert changes.examples_added == [{"message": "New", "answer": "<<INT-2>>"}]


def test_reordering_codes_is_a_change(catalogue):
    domain = Domain.objects.get(slug="urgency")
    before, after = _edited("urgency", codes=list(reversed(domain.codes)))
    changes = domain_changes(before, after)
    assert changes.codes_reordered and changes.any and not changes.codes


def test_saving_an_edit_makes_the_next_version_and_its_history_says_what_changed(catalogue):
    domain = Domain.objects.get(slug="urgency")
    codes = [dict(c) for c in domain.codes]
    codes[4]["description"] = "critical: immediate risk to life"
    _, edited = _edited("urgency", codes=codes)

    changes = save_domain(edited, changed=["codes"], seen_version=1, actor="alice")

    assert Domain.objects.get(slug="urgency").prompt_version == 2  # codes are part of what the model is shown
    assert [(c.code, c.after) for c in changes.codes] == [("LEVEL_4", "critical: immediate risk to life")]
    [revision] = domain_history(Domain.objects.get(slug="urgency"))
    assert (revision.actor, revision.from_version, revision.to_version) == ("alice", 1, 2)
    assert revision.changes.codes == changes.codes


def test_an_edit_of_a_version_someone_else_replaced_is_refused(catalogue):
    _, edited = _edited("modality", prompt_template="First wording of {codes} for {text}")
    save_domain(edited, changed=["prompt_template"], seen_version=1, actor="alice")
    _, stale = _edited("modality", prompt_template="Second wording of {codes} for {text}")
    stale.prompt_version = 1  # as Bob read it before Alice saved

    with pytest.raises(EditRefused, match="at version 2 now, saved since you opened version 1"):
        save_domain(stale, changed=["prompt_template"], seen_version=1, actor="bob")

    assert Domain.objects.get(slug="modality").prompt_template == "First wording of {codes} for {text}"
    assert len(rows("change_domain", "failed")) == 1


def test_a_domain_edit_is_checked_by_the_model_rules(catalogue):
    with pytest.raises(ValidationError) as refused:
        _edited("urgency", prompt_template="no place for the post", codes=[{"code": "bad code!"}])
    assert set(refused.value.message_dict) == {"prompt_template", "codes"}


# ------------------------------------------------------------------------------------------------ try it


def test_trying_an_annotator_shows_three_answers_and_stores_nothing(http_annotator, fake_llm):
    samples = [Sample.objects.get(pk=pk) for pk in make_samples(3, vary=True)]
    fake_llm.script.extend([Reply(content="Thinking... <<LEVEL_2>>"), Reply(content="<<LEVEL_9>>"),
                            Reply(content="no marker at all")])
    http_annotator.cache_responses = True
    http_annotator.save()
    AnnotatorPrice.objects.create(annotator=http_annotator, input_per_1k=Decimal(1), output_per_1k=Decimal(2))

    answers = try_annotator(http_annotator, Domain.objects.get(slug="urgency"), samples, actor="alice")

    assert len(fake_llm.requests) == 3 and all("I feel anxious" in r["body"]["messages"][0]["content"]
                                              for r in fake_llm.requests)
    by_text = {a.completion.text: a for a in answers}
    assert set(by_text) == {"Thinking... <<LEVEL_2>>", "<<LEVEL_9>>", "no marker at all"}
    assert by_text["Thinking... <<LEVEL_2>>"].parsed.labels == ("LEVEL_2",)
    assert not by_text["<<LEVEL_9>>"].parsed.ok and not by_text["no marker at all"].parsed.ok
    assert all((a.completion.prompt_tokens, a.completion.completion_tokens) == (100, 12) for a in answers)
    assert all(a.cost == Decimal("0.124") for a in answers)  # 100 x 1/1000 + 12 x 2/1000
    assert (Outcome.objects.count(), MalformedAttempt.objects.count(), CachedResponse.objects.count()) == (0, 0, 0)
    assert spent(http_annotator) == 0
    [row] = rows("try_annotator")
    assert row.parameters["samples"] == [s.external_id for s in samples] and row.detail["cost"] == "0.372"
    assert "no marker at all" not in json.dumps(row.detail)  # the answers' text stays out of the audit log


def test_a_failing_server_is_an_answer_that_says_why(http_annotator, fake_llm):
    sample = Sample.objects.get(pk=make_samples(1)[0])
    fake_llm.script.append(Reply(status=401, error="bad key"))
    [answer] = try_annotator(http_annotator, Domain.objects.get(slug="urgency"), [sample], actor="alice")
    assert answer.completion is None and "HTTP 401: bad key" in answer.error
    assert Annotator.objects.get(pk=http_annotator.pk).backend_error == ""  # a trial never blocks the workers


def test_a_trial_of_more_than_three_posts_sends_nothing(http_annotator, fake_llm):
    samples = list(Sample.objects.filter(pk__in=make_samples(4, vary=True)))
    with pytest.raises(TrialRefused, match="1 to 3 posts"):
        try_annotator(http_annotator, Domain.objects.get(slug="urgency"), samples, actor="alice")
    assert fake_llm.requests == []


def test_the_builtin_baseline_can_be_tried_too(catalogue):
    sample = Sample.objects.get(pk=make_samples(1, "I have a plan to end my life tonight.")[0])
    [answer] = try_annotator(Annotator.objects.get(number=3), Domain.objects.get(slug="urgency"), [sample],
                             actor="alice")
    assert answer.parsed.ok and answer.completion.model.startswith("builtin-lexicon-v1")  # and its profile


# ------------------------------------------------------------------------------------------------ people


@pytest.fixture
def roles(catalogue):
    call_command("seed_defaults")


@pytest.fixture
def manager(roles):
    """An operator who may manage people (not a superuser)."""
    user = make_staff("olga", "admin_ops.manage_people")
    user.groups.add(Group.objects.get(name="operator"))
    return get_user_model().objects.get(pk=user.pk)


def test_a_person_added_in_a_role_is_staff_without_a_password_until_the_invitation(manager):
    user = add_person("rita", role="reviewer", email="rita@example.org", actor=manager)

    assert user.is_staff and user.is_active and not user.has_usable_password()
    assert list(user.groups.values_list("name", flat=True)) == ["reviewer"]
    assert user.has_perm("workers_app.review_sample")
    _, token = invitation(user)
    assert default_token_generator.check_token(user, token)
    user.set_password("a long enough passphrase")
    user.save()
    assert not default_token_generator.check_token(user, token)  # the link works once
    [row] = rows("add_person")
    assert (row.actor, row.target, row.parameters) == ("olga", "user rita", {"role": "reviewer"})


def test_no_one_gives_a_role_with_permissions_they_lack(roles):
    reviewer = make_staff("rhea", "admin_ops.manage_people")
    reviewer.groups.add(Group.objects.get(name="reviewer"))
    reviewer = get_user_model().objects.get(pk=reviewer.pk)

    with pytest.raises(PermissionDenied, match="may not give the operator role"):
        add_person("mallory", role="operator", actor=reviewer)
    add_person("victor", role="viewer", actor=reviewer)  # within what she has

    assert not get_user_model().objects.filter(username="mallory").exists()
    assert len(rows("add_person", "failed")) == 1


def test_managing_people_needs_its_permission(roles):
    operator = make_staff("oscar")
    operator.groups.add(Group.objects.get(name="operator"))
    with pytest.raises(PermissionDenied, match="admin_ops.manage_people"):
        add_person("eve", role="viewer", actor=get_user_model().objects.get(pk=operator.pk))


def test_a_name_taken_in_any_case_or_not_a_user_name_is_refused(manager):
    add_person("Rita", role="viewer", actor=manager)
    with pytest.raises(PeopleRefused, match="'Rita' exists already"):
        add_person("rita", role="viewer", actor=manager)
    with pytest.raises(ValidationError):
        add_person("rita smith", role="viewer", actor=manager)
    with pytest.raises(PeopleRefused, match="no role 'superuser'"):
        add_person("sam", role="superuser", actor=manager)


def test_a_role_change_replaces_the_role_and_keeps_other_groups(manager):
    user = add_person("rita", role="reviewer", actor=manager)
    user.groups.add(Group.objects.create(name="clinic-a"))

    set_role(user, "viewer", actor=manager)

    assert sorted(user.groups.values_list("name", flat=True)) == ["clinic-a", "viewer"]
    [person] = [p for p in people() if p.user.username == "rita"]
    assert (person.role, person.other_groups, person.invited) == ("viewer", ["clinic-a"], True)
    assert rows("change_role")[0].detail["before"] == ["reviewer"]


def test_deactivated_people_cannot_log_in_and_can_come_back(manager, client):
    user = add_person("rita", role="viewer", actor=manager)
    user.set_password("a long enough passphrase")
    user.save()

    def logs_in() -> bool:
        response = client.post("/admin/login/?next=/", {"username": "rita", "password": "a long enough passphrase"})
        client.logout()
        return response.status_code == 302

    set_active(user, False, actor=manager)
    assert not logs_in()
    set_active(user, True, actor=manager)
    assert logs_in()
    assert [r.action for r in AuditLog.objects.filter(target="user rita", action__endswith="_person")] == [
        "reactivate_person", "deactivate_person", "add_person"]


def test_no_one_changes_their_own_account_or_a_superuser_here(manager, staff):
    with pytest.raises(PeopleRefused, match="your own account"):
        set_active(manager, False, actor=manager)
    with pytest.raises(PermissionDenied, match="only a superuser"):
        set_role(staff, "viewer", actor=manager)
    assert get_user_model().objects.get(pk=manager.pk).is_active


@pytest.mark.parametrize("through", ["user", "group"])
def test_joining_a_role_group_anywhere_makes_the_account_staff(roles, through):
    user = get_user_model().objects.create_user("gwen", password="pw-for-tests")  # as the admin's add form does
    reviewer = Group.objects.get(name="reviewer")
    if through == "user":
        user.groups.add(reviewer)
    else:
        reviewer.user_set.add(user)
    assert get_user_model().objects.get(pk=user.pk).is_staff
    [row] = rows("user_change")
    assert row.target == "user gwen" and row.parameters["fields"] == ["is_staff"]


def test_another_group_does_not_make_staff(roles):
    user = get_user_model().objects.create_user("gwen", password="pw-for-tests")
    user.groups.add(Group.objects.create(name="newsletter"))
    assert not get_user_model().objects.get(pk=user.pk).is_staff


# ------------------------------------------------------------------------------------------------ corpora


def test_a_check_lists_every_problem_by_row_and_writes_nothing(db, tmp_path):
    path = tmp_path / "posts.csv"
    path.write_text("ID,Text\nA1,I cannot sleep\nA2,\nA1,again\nA3,fine\n", encoding="utf-8")

    found = check_corpus(path)

    assert [str(p) for p in found.problems] == ["posts.csv, row 3, field 'text': empty text",
                                                 "posts.csv, row 4, field 'id': duplicate id 'A1' (first at row 2)"]
    assert (found.rows, found.new, Corpus.objects.count(), Sample.objects.count()) == (4, 2, 0, 0)


def test_a_check_says_when_the_file_was_imported_already(db, tmp_path):
    path = tmp_path / "posts.jsonl"
    path.write_text('{"id": "J1", "text": "hello"}\n', encoding="utf-8")
    corpus = import_corpus(path, actor="alice").corpus
    assert check_corpus(path).already_imported == corpus


def test_a_preview_shows_every_sheets_columns_and_the_first_rows_as_chosen(db, tmp_path):
    path = write_xlsx(tmp_path / "posts.xlsx", {
        "Reddit": [("post_id", "body", "score"), *((f"R{i}", f"post {i}", i) for i in range(8))],
        "Forum": [("Sample_ID", "Text")]})

    found = preview_file(path, "posts.xlsx", sheets=["Reddit"])

    assert found.columns == {"Reddit": ["post_id", "body", "score"], "Forum": ["Sample_ID", "Text"]}
    assert [(r.row, r.values["id"], r.values["text"]) for r in found.rows] == [(i + 2, f"R{i}", f"post {i}") for i in range(5)]
    wrong = preview_file(path, "posts.xlsx", sheets=["Reddit"], columns=Columns.corpus(text_column="title"))
    assert wrong.rows == [] and "no text column 'title'" in str(wrong.problem)


def test_a_preview_of_a_csv_and_of_a_jsonl_file_names_their_columns(db, tmp_path):
    csv_path = tmp_path / "a.csv"
    csv_path.write_text("\ufeffid,text,lang\n1,hello,en\n", encoding="utf-8")
    jsonl_path = tmp_path / "a.jsonl"
    jsonl_path.write_text('\n{"id": 1, "text": "hi", "source": "x"}\n', encoding="utf-8")
    assert preview_file(csv_path, "a.csv").columns == {"": ["id", "text", "lang"]}
    assert preview_file(jsonl_path, "a.jsonl").columns == {"": ["id", "text", "source"]}


# ------------------------------------------------------------------------------------------------ long jobs


def test_a_consolidation_and_an_archive_report_their_steps(catalogue, settings, tmp_path):
    settings.ARCHIVES_DIR = tmp_path / "archives"
    run = current_run()
    for pk in make_samples(2, vary=True):
        store_outcome(run, pk, 1, "urgency", ["LEVEL_1"])
    steps: list[tuple[int, int, str]] = []

    consolidate(tmp_path / "c.xlsx", actor="alice", progress=lambda *step: steps.append(step))
    assert steps[0] == (0, 0, "reading the store") and steps[-1] == (9, 9, "done")
    assert [s[2] for s in steps[1:7]] == [f"agreement statistics: {d.slug}" for d in Domain.objects.all()]

    steps.clear()
    create_archive("steps", actor="alice", progress=lambda *step: steps.append(step))
    assert steps[0][2] == "data/runs.jsonl" and steps[-1][2] == "done" and steps[-1][0] == steps[-1][1]
    assert [s[0] for s in steps] == sorted(s[0] for s in steps)


# ------------------------------------------------------------------------------------------------ kept uploads


def test_a_kept_upload_is_found_by_its_token_only_and_pruned_after_a_day(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    token = keep_upload(SimpleUploadedFile("posts.csv", b"ID,Text\n1,hi\n"))

    assert kept_upload(token).read_bytes() == b"ID,Text\n1,hi\n"
    assert (tmp_path / "uploads").stat().st_mode & 0o077 == 0
    for forged in ("../secret_key", token.upper(), token + "/", ""):
        with pytest.raises(UploadGone):
            kept_upload(forged)
    old = time.time() - 2 * 24 * 3600
    os.utime(kept_upload(token), (old, old))
    prune_uploads()
    with pytest.raises(UploadGone, match="upload it again"):
        kept_upload(token)
