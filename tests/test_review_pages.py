"""The /review/ pages through Django's test client: who may open them, what they show, and hostile input."""

from __future__ import annotations

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
    assert "You claimed this item" in html and "Mark reviewed" in html
    assert '<label for="id-label-urgency">Urgency</label>' in html
    assert '<option value="LEVEL_3" selected>' in html  # four of five said LEVEL_3
    assert 'name="label-modality"' in html and 'type="checkbox"' in html


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
    ({"label-redressal": "free text"}, None, "redressal: not a domain that can be adjudicated"),
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
    intensity = html.split('id="id-label-intensity"')[1].split("</select>")[0]
    assert '<option value="" selected>— not adjudicated —</option>' in intensity  # nobody labelled it
    assert html.count('name="label-adjunct" value="NONE"') == 1
    client.post(f"/review/{queue[0].pk}/adjudicate/", {"label-urgency": "LEVEL_3", "label-intensity": ""})
    assert ReviewItem.objects.get(pk=queue[0].pk).adjudicated == {"urgency": ["LEVEL_3"]}
