"""The annotation browser: /samples/ (search, filters, pages) and /samples/<id>/ (the 5 x 6 table of one post)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from tests.browser.conftest import make_staff
from tests.helpers import make_samples

pytestmark = pytest.mark.django_db

AGREED = {"urgency": ["LEVEL_1"], "therapeutic": ["TA-1"], "intensity": ["INT-1"], "adjunct": ["NONE"],
          "modality": ["MOD-1"], "redressal": ["sleep"]}


def store(sample_id: int, annotator: int, domain: str, labels: list[str] | None = None, *, status: str = "ok",
          reason: str = "", raw: str = "<<x>>", **fields):
    from workers_app.models import Annotator, Domain, Outcome
    from workers_app.runs.current import current_run

    return Outcome.objects.create(
        run=fields.pop("run", None) or current_run(), sample_id=sample_id, annotator=Annotator.objects.get(number=annotator), domain=Domain.objects.get(slug=domain),
        status=status, labels=labels if labels is not None else ([] if status == "malformed" else AGREED[domain]),
        reason=reason, raw_answer=raw, model="builtin-lexicon-v1", prompt_version=1, started_at=timezone.now(),
        **fields)


def store_all(sample_id: int, **overrides) -> None:
    """All 30 outcomes of a sample, agreeing, except ``overrides[(annotator, domain)]`` = labels or a dict."""
    for annotator in range(1, 6):
        for domain in AGREED:
            change = overrides.get(f"a{annotator}_{domain}")
            if isinstance(change, dict):
                store(sample_id, annotator, domain, **change)
            else:
                store(sample_id, annotator, domain, change)


@pytest.fixture
def viewer(client, catalogue):
    client.force_login(make_staff("viewer", "workers_app.view_sample"))
    return client


@pytest.fixture
def corpus(catalogue):
    """Seven posts, each with one trait the filters look for; 'other' sits in a second corpus."""
    from workers_app.models import ReviewItem, Sample

    texts = ["Calm morning routine tips", "Exam stress and no sleep", "I will not say", "A plan for tonight",
             "Which therapy suits me", "Nothing stored yet", "Reviewed already"]
    ids = dict(zip(["plain", "malformed", "refusal", "urgent", "disagree", "empty", "reviewed"],
                   [make_samples(1, text)[0] for text in texts], strict=True))
    ids["other"] = make_samples(1, "Another corpus entirely")[0]
    store_all(ids["plain"])
    store_all(ids["malformed"], a2_intensity={"status": "malformed", "reason": "no_marker"})
    store_all(ids["refusal"], a3_urgency={"status": "malformed", "reason": "refusal", "raw": "I can't help with that"})
    store_all(ids["urgent"], a1_urgency=["LEVEL_4"])
    store_all(ids["disagree"], a4_therapeutic=["TA-2", "TA-3"])
    store_all(ids["reviewed"])
    store_all(ids["other"])
    ReviewItem.objects.create(sample_id=ids["urgent"], reasons=["level_4"], risk=3)
    ReviewItem.objects.create(sample_id=ids["reviewed"], reasons=["refusal"], status="reviewed",
                              adjudicated={"urgency": ["LEVEL_2"]})
    return {name: Sample.objects.get(pk=pk) for name, pk in ids.items()}


def listed(client, **params) -> list[str]:
    response = client.get("/samples/", params)
    assert response.status_code == 200
    return [row.sample.external_id for row in response.context["rows"]]


def names(corpus, *keys) -> list[str]:
    return sorted((corpus[key].external_id for key in keys), key=lambda external_id: corpus_order(corpus, external_id))


def corpus_order(corpus, external_id: str) -> int:
    return next(sample.pk for sample in corpus.values() if sample.external_id == external_id)


# ------------------------------------------------------------------------------------------------ who may look


def test_it_sends_anonymous_visitors_to_the_login_page(client, db):
    for path in ("/samples/", "/samples/1/"):
        response = client.get(path)
        assert response.status_code == 302
        assert response.url.startswith("/admin/login/?next=")


def test_it_refuses_staff_without_view_sample(client, catalogue):
    client.force_login(make_staff("worker-watcher", "workers_app.view_worker"))
    assert client.get("/samples/").status_code == 403
    assert client.get("/samples/1/").status_code == 403


# ------------------------------------------------------------------------------------------------ empty states


def test_it_says_how_to_import_when_there_are_no_samples(viewer):
    response = viewer.get("/samples/")
    assert "No samples imported yet" in response.content.decode()
    assert "import a corpus in the admin" in response.content.decode()


def test_it_says_when_no_sample_matches_the_filters(viewer, corpus):
    response = viewer.get("/samples/", {"q": "no post says this"})
    assert response.context["rows"] == []
    assert "No sample matches these filters" in response.content.decode()


# ------------------------------------------------------------------------------------------------ each filter


def test_without_filters_it_lists_every_sample_in_import_order(viewer, corpus):
    assert listed(viewer) == names(corpus, *corpus)


def test_it_filters_by_corpus(viewer, corpus):
    assert listed(viewer, corpus=corpus["other"].corpus_id) == names(corpus, "other")


def test_it_searches_the_external_id_and_the_text(viewer, corpus):
    assert listed(viewer, q=corpus["urgent"].external_id) == names(corpus, "urgent")
    assert listed(viewer, q="EXAM STRESS") == names(corpus, "malformed")


def test_annotator_and_domain_select_samples_with_such_outcomes(viewer, corpus):
    everything_stored = names(corpus, "plain", "malformed", "refusal", "urgent", "disagree", "reviewed", "other")
    assert listed(viewer, annotator=2) == everything_stored
    assert listed(viewer, domain="modality") == everything_stored


def test_status_malformed_and_ok(viewer, corpus):
    assert listed(viewer, status="malformed") == names(corpus, "malformed", "refusal")
    assert listed(viewer, status="malformed", annotator=2) == names(corpus, "malformed")
    assert listed(viewer, status="malformed", domain="urgency") == names(corpus, "refusal")
    assert listed(viewer, status="ok") == names(corpus, "plain", "urgent", "disagree", "reviewed", "other")
    assert corpus["malformed"].external_id in listed(viewer, status="ok", domain="urgency")


def test_refusal(viewer, corpus):
    assert listed(viewer, refusal="on") == names(corpus, "refusal")
    assert listed(viewer, refusal="on", annotator=1) == []


def test_level_4_looks_at_urgency_only(viewer, corpus):
    assert listed(viewer, level_4="on") == names(corpus, "urgent")
    assert listed(viewer, level_4="on", annotator=1) == names(corpus, "urgent")
    assert listed(viewer, level_4="on", annotator=2) == []


def test_disagreement_in_any_domain_or_in_the_chosen_one(viewer, corpus):
    # 'refusal' has a malformed urgency answer, not a different OK label: no disagreement.
    assert listed(viewer, disagreement="on") == names(corpus, "urgent", "disagree")
    assert listed(viewer, disagreement="on", domain="therapeutic") == names(corpus, "disagree")
    assert listed(viewer, disagreement="on", domain="urgency") == names(corpus, "urgent")
    assert listed(viewer, disagreement="on", domain="modality") == []


def test_review_states(viewer, corpus):
    assert listed(viewer, review="flagged") == names(corpus, "urgent")
    assert listed(viewer, review="reviewed") == names(corpus, "reviewed")
    assert corpus["urgent"].external_id not in listed(viewer, review="not_flagged")
    assert len(listed(viewer, review="not_flagged")) == len(corpus) - 2


def test_filters_combine(viewer, corpus):
    assert listed(viewer, level_4="on", review="flagged", disagreement="on", domain="urgency") == names(
        corpus, "urgent")
    assert listed(viewer, level_4="on", review="reviewed") == []


def test_each_row_shows_its_figures_flags_and_review_state(viewer, corpus):
    response = viewer.get("/samples/")
    rows = {row.sample.external_id: row for row in response.context["rows"]}
    assert (rows[corpus["plain"].external_id].done, rows[corpus["empty"].external_id].done) == (30, 0)
    assert rows[corpus["malformed"].external_id].malformed == 1
    assert rows[corpus["refusal"].external_id].refusals == 1
    assert rows[corpus["urgent"].external_id].urgent
    assert rows[corpus["disagree"].external_id].disagreeing == ["therapeutic"]
    html = response.content.decode()
    assert "30 / 30" in html and "0 / 30" in html
    assert "LEVEL_4" in html and "disagree: therapeutic" in html and "1 malformed" in html
    assert ">open<" in html and ">reviewed<" in html and "not flagged" in html


# ------------------------------------------------------------------------------------------------ pages


def test_pages_hold_fifty_and_keep_the_filters(viewer, catalogue):
    make_samples(120, "page me", vary=True)
    make_samples(5, "other text", vary=True)
    response = viewer.get("/samples/", {"q": "page me", "page": 2})
    assert len(response.context["rows"]) == 50
    assert response.context["page"].number == 2
    assert response.context["rows"][0].sample.excerpt == "page me (#50)"
    html = response.content.decode()
    assert 'href="?q=page+me&amp;page=3"' in html and 'href="?q=page+me&amp;page=1"' in html
    assert len(listed(viewer, q="page me", page=3)) == 20


@pytest.mark.parametrize("page, shown, note", [
    ("0", 1, "There is no page 0"), ("-4", 1, "There is no page -4"), ("99", 3, "There is no page 99"),
    ("abc", 1, "is not a page number"), ("9" * 5000, 1, "is not a page number"), ("1.5", 1, "is not a page number"),
])
def test_a_bad_page_shows_the_nearest_page_and_says_so(viewer, catalogue, page, shown, note):
    make_samples(120, "page me", vary=True)
    response = viewer.get("/samples/", {"page": page})
    assert response.status_code == 200
    assert response.context["page"].number == shown
    assert note in response.content.decode()


@pytest.mark.parametrize("params, field", [
    ({"corpus": "99999"}, "Corpus"), ({"corpus": "abc"}, "Corpus"), ({"domain": "../x"}, "Domain"),
    ({"domain": "urgency\x00"}, "Domain"), ({"annotator": "77"}, "Annotator"), ({"annotator": "1 OR 1=1"}, "Annotator"),
    ({"status": "broken"}, "Status"), ({"review": "<script>"}, "Review"), ({"q": "x" * 500}, "Search id or text"),
])
def test_a_bad_filter_value_is_named_and_ignored(viewer, corpus, params, field):
    response = viewer.get("/samples/", params)
    assert response.status_code == 200
    html = response.content.decode()
    assert f"{field}:" in html and "This filter was ignored." in html
    assert "<script>" not in html.split("<main", 1)[1]
    assert len(response.context["rows"]) == len(corpus)


def test_the_list_costs_a_fixed_number_of_queries(viewer, corpus, django_assert_max_num_queries):
    make_samples(60, "many", vary=True)
    for params in ({}, {"disagreement": "on", "level_4": "on", "refusal": "on", "status": "ok", "domain": "urgency",
                        "annotator": 1, "review": "flagged", "q": "a", "corpus": corpus["plain"].corpus_id}):
        # 4 for the session, the user and their permissions; then the runs, corpora, annotators, domains, the count,
        # the page and the outcomes of the page.
        with django_assert_max_num_queries(11):
            response = viewer.get("/samples/", params)
        assert response.status_code == 200
    assert len(response.context["rows"]) <= 50


# ------------------------------------------------------------------------------------------------ one sample


def test_the_sample_page_shows_the_text_and_a_five_by_six_table(viewer, corpus):
    from workers_app.models import MalformedAttempt

    sample = corpus["malformed"]
    broken = sample.outcomes.get(annotator__number=2, domain__slug="intensity")
    MalformedAttempt.objects.create(run=broken.run, sample=sample, annotator_id=broken.annotator_id, domain_id=broken.domain_id,
                                    attempt=1, reason="no_marker", raw_answer="first try, no marker", prompt_version=1)
    response = viewer.get(f"/samples/{sample.pk}/")
    html = response.content.decode()
    assert response.status_code == 200
    assert '<div class="post-text">Exam stress and no sleep</div>' in html
    view = response.context["view"]
    assert [len(row) for row in view.grid] == [6] * 5
    assert html.count("data-cell=") == 30
    cell = view.grid[1][2]
    assert cell.key == "annotator_2_intensity" and cell.outcome.status == "malformed"
    assert [a.raw_answer for a in cell.attempts] == ["first try, no marker"]
    assert "first try, no marker" in html and "no_marker" in html
    assert html.count('<pre class="raw">') == 31


def test_a_missing_cell_says_not_yet_and_shows_cell_details(viewer, corpus):
    sample = corpus["empty"]
    store(sample.pk, 3, "modality", ["MOD-2"], raw="<<MOD-2>> because", latency_ms=812, prompt_tokens=100,
          completion_tokens=7, attempts=2)
    html = viewer.get(f"/samples/{sample.pk}/").content.decode()
    assert html.count("not yet") == 29
    assert "812 ms" in html and "100 + 7" in html and "&lt;&lt;MOD-2&gt;&gt; because" in html
    assert "<summary>Details</summary>" in html


def test_the_sample_page_shows_agreement_per_domain(viewer, corpus):
    response = viewer.get(f"/samples/{corpus['urgent'].pk}/")
    found = {a.domain.slug: (a.label, a.votes, a.given) for a in response.context["view"].agreement}
    assert found["urgency"] == ("LEVEL_1", 4, 5)
    assert found["modality"] == ("MOD-1", 5, 5)
    html = response.content.decode()
    assert "<strong>LEVEL_1</strong><br>4 of 5 OK labels</td>" in html
    assert "<strong>MOD-1</strong><br>5 of 5 OK labels (all agree)</td>" in html


def test_a_tie_has_no_majority(viewer, corpus):
    sample = corpus["empty"]
    store(sample.pk, 1, "urgency", ["LEVEL_1"])
    store(sample.pk, 2, "urgency", ["LEVEL_3"])
    response = viewer.get(f"/samples/{sample.pk}/")
    assert "no majority (tie)" in response.content.decode()
    assert "no OK label yet" in response.content.decode()


def test_the_review_state_and_its_link_only_for_reviewers(client, corpus):
    from workers_app.models import ReviewItem

    item = ReviewItem.objects.get(sample=corpus["reviewed"])
    looker = make_staff("looker", "workers_app.view_sample")
    clinician = make_staff("clinician", "workers_app.view_sample", "workers_app.review_sample")
    client.force_login(looker)
    html = client.get(f"/samples/{corpus['reviewed'].pk}/").content.decode()
    assert "reviewed" in html and "refusal" in html and "urgency: LEVEL_2" in html
    assert f'/review/{item.pk}/' not in html
    client.force_login(clinician)
    assert f'href="/review/{item.pk}/"' in client.get(f"/samples/{corpus['reviewed'].pk}/").content.decode()
    assert "Not flagged for clinical review" in client.get(f"/samples/{corpus['plain'].pk}/").content.decode()


def test_post_text_and_answers_are_escaped(viewer, catalogue):
    from workers_app.models import Sample

    pk = make_samples(1, '<script>alert("post")</script>')[0]
    store(pk, 1, "urgency", status="malformed", reason="no_marker", raw="<img src=x onerror=alert(1)>")
    html = viewer.get(f"/samples/{pk}/").content.decode()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert" in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    listing = viewer.get("/samples/").content.decode()
    assert "<script>alert" not in listing and Sample.objects.get(pk=pk).external_id in listing


@pytest.mark.parametrize("path", ["/samples/999999/", "/samples/99999999999999999999999/", "/samples/abc/",
                                  "/samples/-1/"])
def test_an_unknown_sample_is_404(viewer, path):
    assert viewer.get(path).status_code == 404


def test_the_sample_page_costs_a_fixed_number_of_queries(viewer, corpus, django_assert_max_num_queries):
    # 4 for the session, the user and their permissions; then the sample with its corpus and review, annotators,
    # domains, the outcomes, the malformed attempts and the runs to link to.
    with django_assert_max_num_queries(10):
        response = viewer.get(f"/samples/{corpus['urgent'].pk}/")
    assert response.status_code == 200
