"""The /review/ pages through Django's test client: who may open them, what they show, and hostile input."""

from __future__ import annotations

import openpyxl
import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from audit.models import AuditLog
from tests.helpers import make_samples
from workers_app.models import Annotator, Domain, Outcome, ReviewItem, Sample
from workers_app.review.flags import flag_stored
from workers_app.review.services import claim_review
from workers_app.runs.current import current_run

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-pages"


def make_user(django_user_model, name: str, *permissions: str, staff: bool = True):
    user = django_user_model.objects.create_user(name, password=PASSWORD, is_staff=staff)
    for dotted in permissions:
        app_label, codename = dotted.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return django_user_model.objects.get(pk=user.pk)


def client_for(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def stored_urgency(sample_id: int, levels: list[int]) -> None:
    domain = Domain.objects.get(slug="urgency")
    sample = Sample.objects.get(pk=sample_id)
    rows = [{"run": current_run(), "sample": sample,
             "annotator": Annotator.objects.get(number=number), "domain": domain, "status": "ok",
             "labels": [f"LEVEL_{level}"], "reason": "", "prompt_version": 1, "started_at": timezone.now()}
            for number, level in enumerate(levels, start=1)]
    for fields in rows:
        Outcome.objects.create(**fields)
    flag_stored(rows)


@pytest.fixture
def queue(catalogue):
    """Three items: a LEVEL_4 post, a 3-level spread, and a 2-level spread."""
    ids = make_samples(3, vary=True)
    Sample.objects.filter(pk=ids[0]).update(text="<script>alert('x')</script> I want to kill myself")
    stored_urgency(ids[0], [4, 3, 3, 3, 3])
    stored_urgency(ids[1], [0, 3, 1, 1, 1])
    stored_urgency(ids[2], [0, 2, 1, 1, 1])
    return [ReviewItem.objects.get(sample_id=pk) for pk in ids]


@pytest.fixture
def rita(django_user_model):
    return make_user(django_user_model, "rita", "workers_app.review_sample")


def urls(item: ReviewItem) -> list[tuple[str, str]]:
    base = f"/review/{item.pk}/"
    return [("get", "/review/"), ("get", base), ("post", base + "claim/"), ("post", base + "release/"),
            ("post", base + "adjudicate/")]


def test_anonymous_visitors_are_sent_to_log_in_from_every_review_url(queue):
    for method, url in urls(queue[0]):
        response = getattr(Client(), method)(url)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), url


def test_staff_without_review_sample_get_403_on_every_review_url(queue, django_user_model):
    viewer = make_user(django_user_model, "vic", "workers_app.view_sample", "workers_app.view_reviewitem")
    client = client_for(viewer)
    for method, url in urls(queue[0]):
        assert getattr(client, method)(url).status_code == 403, url
    assert ReviewItem.objects.get(pk=queue[0].pk).status == ReviewItem.Status.OPEN


def test_a_non_staff_user_with_the_permission_is_sent_to_log_in(queue, django_user_model):
    user = make_user(django_user_model, "norm", "workers_app.review_sample", staff=False)
    assert client_for(user).get("/review/").status_code == 302


def test_the_queue_lists_items_by_risk_with_reasons_and_urgency_labels(queue, rita):
    page = client_for(rita).get("/review/")
    assert page.status_code == 200
    html = page.content.decode()
    positions = [html.index(f'data-item="{item.pk}"') for item in queue]
    assert positions == sorted(positions)
    assert "LEVEL_4 given" in html and "labels 3 levels apart" in html and "labels 2 levels apart" in html
    assert "1: LEVEL_4" in html and 'class="badge risk-high">high<' in html and ">open</span>" in html


@pytest.mark.parametrize(("query", "shown"), [
    ("?reason=level_4", [0]), ("?reason=urgency_spread", [1, 2]), ("?status=claimed", [1]),
    ("?mine=1", [1]), ("?status=reviewed", []), ("?status=all", [0, 1, 2]),
    ("?status=%3Cbad%3E&reason=drop+table&page=-3", [0, 1, 2]), ("?page=99999", [0, 1, 2]),
])
def test_the_queue_filters_and_ignores_nonsense(queue, rita, query, shown):
    claim_review(queue[1], actor_user=rita)
    html = client_for(rita).get("/review/" + query).content.decode()
    assert [index for index, item in enumerate(queue) if f'data-item="{item.pk}"' in html] == shown


def test_an_empty_queue_says_why(catalogue, rita):
    html = client_for(rita).get("/review/").content.decode()
    assert "Nothing to review" in html
    assert "No review item matches" in client_for(rita).get("/review/?reason=refusal").content.decode()


def test_the_item_page_shows_the_post_escaped_every_label_and_a_claim_button(queue, rita):
    html = client_for(rita).get(f"/review/{queue[0].pk}/").content.decode()
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; I want to kill myself" in html
    assert "<script>alert" not in html
    assert f'href="/samples/{queue[0].sample_id}/"' in html
    assert "Claim this item" in html and "Mark reviewed" not in html


@pytest.mark.parametrize("url", ["/review/999999/", "/review/abc/", "/review/-1/", "/review/999999/claim/"])
def test_a_bad_item_id_is_404(queue, rita, url):
    response = client_for(rita).get(url) if "claim" not in url else client_for(rita).post(url)
    assert response.status_code == 404


def test_a_reviewer_claims_then_sees_the_form_prefilled_with_the_majority(queue, rita):
    client = client_for(rita)
    response = client.post(f"/review/{queue[0].pk}/claim/", follow=True)
    html = response.content.decode()
    assert ReviewItem.objects.get(pk=queue[0].pk).claimed_by == rita
    assert "You claimed this item" in html and "Mark reviewed" in html and "Save and next" in html
    assert '<legend>Urgency <span class="muted">(one)</span></legend>' in html
    # four of five said LEVEL_3; each code is shown with its meaning and the number key that picks it
    assert ('<input type="radio" name="label-urgency" value="LEVEL_3" id="id-label-urgency-LEVEL_3" checked '
            'data-number="4"> <kbd>4</kbd> <strong>LEVEL_3</strong> <span class="meaning">high: needs professional '
            'contact within 24 hours</span>') in html
    assert 'name="label-modality" value="MOD-1"' in html and 'type="checkbox"' in html
    assert "<strong>TA-5</strong> <span class=\"meaning\">acceptance and commitment therapy</span>" in html


def test_someone_elses_claim_is_refused_with_its_name(queue, rita, django_user_model):
    sam = make_user(django_user_model, "sam", "workers_app.review_sample")
    claim_review(queue[0], actor_user=rita)
    html = client_for(sam).post(f"/review/{queue[0].pk}/claim/", follow=True).content.decode()
    assert "this item is already claimed by rita" in html and "Mark reviewed" not in html
    html = client_for(sam).post(f"/review/{queue[0].pk}/release/", follow=True).content.decode()
    assert "only its claimer (rita)" in html
    client_for(sam).post(f"/review/{queue[0].pk}/adjudicate/", {"label-urgency": "LEVEL_1"})
    assert ReviewItem.objects.get(pk=queue[0].pk).claimed_by == rita
    assert ReviewItem.objects.get(pk=queue[0].pk).adjudicated == {}


def test_marking_reviewed_records_the_labels_and_the_note(queue, rita):
    client = client_for(rita)
    client.post(f"/review/{queue[0].pk}/claim/")
    response = client.post(f"/review/{queue[0].pk}/adjudicate/", {
        "label-urgency": "LEVEL_4", "label-modality": ["MOD-2", "MOD-1"], "note": "<b>called</b> the crisis line"})
    assert response.status_code == 302 and response["Location"] == "/review/"
    item = ReviewItem.objects.get(pk=queue[0].pk)
    assert item.status == ReviewItem.Status.REVIEWED
    assert item.adjudicated == {"urgency": ["LEVEL_4"], "modality": ["MOD-1", "MOD-2"]}
    html = client.get(f"/review/{queue[0].pk}/").content.decode()
    assert "&lt;b&gt;called&lt;/b&gt; the crisis line" in html and "Claim this item" not in html


@pytest.mark.parametrize(("data", "field", "error"), [
    ({"label-urgency": "LEVEL_9"}, "urgency", "is not one of its codes"),
    ({"label-urgency": ["LEVEL_1", "LEVEL_2"]}, "urgency", "choose exactly one code (got 2)"),
    ({"label-modality": ["MOD-1", "MOD-99"]}, "modality", "is not one of its codes"),
    ({"label-urgency": "LEVEL_1", "note": "x" * 10_001}, "note", "at most 10000 characters"),
    ({"label-nosuch": "A", "label-urgency": "LEVEL_1"}, None, "nosuch: not a domain that can be adjudicated"),
    ({"label-redressal": "\n".join(f"issue {n}" for n in range(11))}, "redressal", "give 1 to 10 issues (got 11)"),
    ({"label-redressal": "sleep\nsleep"}, "redressal", "an issue is given twice"),
    ({"label-redressal": "x" * 201}, "redressal", "issue 1 is longer than 200 characters"),
    ({"label-redressal": "fine\x07bell"}, "redressal", "issue 1 holds a control character"),
])
def test_a_bad_form_value_is_shown_next_to_its_field_and_changes_nothing(queue, rita, data, field, error):
    client = client_for(rita)
    client.post(f"/review/{queue[0].pk}/claim/")
    response = client.post(f"/review/{queue[0].pk}/adjudicate/", data)
    assert response.status_code == 400
    html = response.content.decode()
    if field:
        assert f'id="err-{field}">' in html and error in html.split(f'id="err-{field}">')[1].split("</p>")[0]
    else:
        assert error in html
    item = ReviewItem.objects.get(pk=queue[0].pk)
    assert item.status == ReviewItem.Status.CLAIMED and item.adjudicated == {} and item.note == ""
    assert AuditLog.objects.filter(action="adjudicate_review", result="failed").count() == 1


def test_review_steps_are_post_only(queue, rita):
    client = client_for(rita)
    for suffix in ("claim/", "release/", "adjudicate/"):
        assert client.get(f"/review/{queue[0].pk}/{suffix}").status_code == 405
    assert ReviewItem.objects.get(pk=queue[0].pk).status == ReviewItem.Status.OPEN


def test_a_post_without_the_csrf_token_is_refused(queue, rita):
    client = client_for(rita, enforce_csrf_checks=True)
    assert client.post(f"/review/{queue[0].pk}/claim/").status_code == 403
    assert ReviewItem.objects.get(pk=queue[0].pk).status == ReviewItem.Status.OPEN
    page = client.get(f"/review/{queue[0].pk}/")
    token = page.cookies["csrftoken"].value
    assert client.post(f"/review/{queue[0].pk}/claim/", {"csrfmiddlewaretoken": token}).status_code == 302
    assert ReviewItem.objects.get(pk=queue[0].pk).claimed_by == rita


def test_a_superuser_may_release_anothers_claim(queue, rita, django_user_model):
    boss = django_user_model.objects.create_superuser("boss", password=PASSWORD)
    claim_review(queue[0], actor_user=rita)
    html = client_for(boss).get(f"/review/{queue[0].pk}/").content.decode()
    assert "Release rita's claim" in html
    client_for(boss).post(f"/review/{queue[0].pk}/release/")
    assert ReviewItem.objects.get(pk=queue[0].pk).status == ReviewItem.Status.OPEN


def test_a_domain_left_not_adjudicated_gets_no_label_and_codes_appear_once(queue, rita):
    client = client_for(rita)
    client.post(f"/review/{queue[0].pk}/claim/")
    html = client.get(f"/review/{queue[0].pk}/").content.decode()
    intensity = html.split('data-domain="intensity"')[1].split("</fieldset>")[0]
    assert '<input type="radio" name="label-intensity" value="" checked> <kbd>0</kbd>' in intensity  # nobody said
    assert html.count('name="label-adjunct" value="NONE"') == 1
    client.post(f"/review/{queue[0].pk}/adjudicate/", {"label-urgency": "LEVEL_3", "label-intensity": ""})
    assert ReviewItem.objects.get(pk=queue[0].pk).adjudicated == {"urgency": ["LEVEL_3"]}


def test_redressal_is_adjudicated_as_a_list_of_issues_one_per_line(queue, rita, tmp_path):
    from admin_ops.services.consolidate import consolidate

    client = client_for(rita)
    client.post(f"/review/{queue[0].pk}/claim/")
    html = client.get(f"/review/{queue[0].pk}/").content.decode()
    assert '<textarea id="id-label-redressal" name="label-redressal"' in html
    assert "1 to 10 issues of at most 200 characters each." in html
    client.post(f"/review/{queue[0].pk}/adjudicate/", {"label-urgency": "LEVEL_4",
                                                      "label-redressal": " sleep problems \r\n\r\nexam stress\n"})
    item = ReviewItem.objects.get(pk=queue[0].pk)
    assert item.adjudicated == {"urgency": ["LEVEL_4"], "redressal": ["sleep problems", "exam stress"]}
    rows = list(openpyxl.load_workbook(consolidate(tmp_path / "c.xlsx", actor=rita).path)["redressal"].iter_rows(
        values_only=True))
    column = rows[0].index("adjudicated label")
    external_id = item.sample.external_id
    assert next(r for r in rows if r[0] == external_id)[column] == "sleep problems; exam stress"


@pytest.mark.parametrize(("labels", "why"), [
    ({"redressal": "sleep"}, "give a list of issues (text)"),
    ({"redressal": [1, 2]}, "give a list of issues (text)"),
    ({"redressal": []}, "give 1 to 10 issues (got 0)"),
    ({"redressal": ["  "]}, "issue 1 is empty"),
    ({"redressal": ["a\nb"]}, "issue 1 holds a control character"),
])
def test_the_service_refuses_a_bad_issue_list_by_name(queue, rita, labels, why):
    from workers_app.review.services import InvalidAdjudication, adjudicate_review

    claim_review(queue[0], actor_user=rita)
    with pytest.raises(InvalidAdjudication) as refused:
        adjudicate_review(queue[0], labels=labels, note="", actor_user=rita)
    assert refused.value.problems == {"redressal": why}
    assert ReviewItem.objects.get(pk=queue[0].pk).adjudicated == {}


def test_each_domain_offers_the_examples_the_models_were_shown(queue, rita):
    client = client_for(rita)
    client.post(f"/review/{queue[0].pk}/claim/")
    html = client.get(f"/review/{queue[0].pk}/").content.decode()
    urgency = html.split('data-domain="urgency"')[1].split("</fieldset>")[0]
    assert "<summary>Examples the models were shown (3)</summary>" in urgency
    assert "“I have a plan to end my life tonight.” → <code>&lt;&lt;LEVEL_4&gt;&gt;</code>" in urgency


def test_the_filters_ride_along_from_the_queue_to_each_item_and_back(queue, rita):
    client = client_for(rita)
    html = client.get("/review/?reason=urgency_spread").content.decode()
    assert f'href="/review/{queue[1].pk}/?reason=urgency_spread">' in html
    assert html.split(f'href="/review/{queue[1].pk}/?reason=urgency_spread"')[1].startswith(' id="start"')
    page = client.get(f"/review/{queue[1].pk}/?reason=urgency_spread").content.decode()
    assert "item 1 of 2" in page and f'href="/review/{queue[2].pk}/?reason=urgency_spread" data-key="next"' in page
    assert 'href="/review/?reason=urgency_spread">‹ Queue</a>' in page and '<span class="muted">← previous</span>' in page
    claimed = client.post(f"/review/{queue[1].pk}/claim/?reason=urgency_spread")
    assert claimed["Location"] == f"/review/{queue[1].pk}/?reason=urgency_spread"
    assert f'action="/review/{queue[1].pk}/adjudicate/?reason=urgency_spread"' in client.get(
        claimed["Location"]).content.decode()


def test_save_and_next_goes_to_the_next_item_of_the_same_filter_and_then_back_to_the_queue(queue, rita):
    client = client_for(rita)
    client.post(f"/review/{queue[1].pk}/claim/")
    saved = client.post(f"/review/{queue[1].pk}/adjudicate/?reason=urgency_spread",
                        {"label-urgency": "LEVEL_1", "then": "next"})
    # The reviewed item left "to do", yet the walk goes on after it.
    assert saved["Location"] == f"/review/{queue[2].pk}/?reason=urgency_spread"
    client.post(f"/review/{queue[2].pk}/claim/")
    last = client.post(f"/review/{queue[2].pk}/adjudicate/?reason=urgency_spread",
                       {"label-urgency": "LEVEL_1", "then": "next"}, follow=True)
    assert last.redirect_chain[-1][0] == "/review/?reason=urgency_spread"
    assert "That was the last item of this queue." in last.content.decode()


def test_a_reviewer_sees_their_own_counters(queue, rita, django_user_model):
    sam = make_user(django_user_model, "sam", "workers_app.review_sample")
    client = client_for(rita)
    client.post(f"/review/{queue[0].pk}/claim/")
    client.post(f"/review/{queue[0].pk}/adjudicate/", {"label-urgency": "LEVEL_4"})
    client.post(f"/review/{queue[1].pk}/claim/")
    claim_review(queue[2], actor_user=sam)
    html = client.get("/review/").content.decode()
    assert ('You: <strong data-count="reviewed_today">1</strong> reviewed today · <strong data-count="reviewed">1'
            '</strong> in all · <strong data-count="claimed">1</strong> claimed now') in html
    assert '<strong data-count="claimed">1</strong>' in client_for(sam).get(f"/review/{queue[0].pk}/").content.decode()


def test_nonsense_filters_on_an_item_page_are_dropped_not_echoed(queue, rita):
    html = client_for(rita).get(f"/review/{queue[0].pk}/?status=%3Cscript%3E&reason=drop&mine=yes").content.decode()
    assert "<script>" not in html.split("<main")[1].split("review.js")[0]
    assert 'href="/review/">‹ Queue</a>' in html and "item 1 of 3" in html


def test_the_item_page_names_every_keyboard_shortcut_and_loads_its_script(queue, rita):
    html = client_for(rita).get(f"/review/{queue[0].pk}/").content.decode()
    for key in ("j", "k", "c", "r", "s", "m", "1", "0", "]", "[", "Esc"):
        assert f"<kbd>{key}</kbd>" in html
    assert '<script src="/static/workspace/review.js"></script>' in html and 'aria-keyshortcuts="c"' in html
