"""The clinical review queue in a real browser: a LEVEL_4 stored by a real worker is reviewed end to end."""

from __future__ import annotations

from urllib.parse import urlsplit

import openpyxl
import pytest
from selenium.webdriver.common.by import By

from admin_ops.services.consolidate import consolidate
from tests.browser.conftest import log_in, make_staff, screenshot, wait_for
from tests.helpers import make_samples, wait_until
from tests.test_review import row, store
from tests.worker_processes import assert_all_ok
from workers_app.engine.queues import populate_queues
from workers_app.fleet.rows import select_workers
from workers_app.fleet.services import launch_worker
from workers_app.models import Outcome, ReviewItem, Sample

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
URGENT = "I am suicidal and I want to kill myself tonight; I have written a goodbye note."


def test_a_level_4_from_a_real_worker_is_claimed_adjudicated_and_consolidated(browser, agent, tmp_path):
    make_samples(3, "Exams are stressing me out and I sleep badly this month.", vary=True)
    [urgent] = make_samples(1, URGENT)
    [worker] = select_workers(1, "urgency")
    assert_all_ok([launch_worker(worker, actor="test")], agent)
    populate_queues(1, "urgency")
    wait_until(lambda: ReviewItem.objects.filter(sample_id=urgent).exists(), timeout=90,
               what="the worker's LEVEL_4 item")
    assert Outcome.objects.get(sample_id=urgent, annotator__number=1, domain__slug="urgency").labels == ["LEVEL_4"]
    # Other annotators' answers, stored as their workers would: a spread and a refusal fill the queue.
    for number, level in ((2, 3), (3, 3), (4, 3)):
        store(number, "urgency", [row(urgent, number, "urgency", [f"LEVEL_{level}"])])
    spread, refused = make_samples(2, "Some days are fine, some are hard.", vary=True)
    store(2, "urgency", [row(spread, 2, "urgency", ["LEVEL_0"])])
    store(3, "urgency", [row(spread, 3, "urgency", ["LEVEL_3"])])
    store(2, "modality", [row(refused, 2, "modality", reason="refusal")])

    reviewer = make_staff("rita", "workers_app.review_sample", "admin_ops.consolidate")
    log_in(browser, "rita", next_path="/review/")
    item = ReviewItem.objects.get(sample_id=urgent)
    first = wait_for(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "tr[data-item]"), what="the queue")[0]
    assert first.get_attribute("data-item") == str(item.pk)  # highest risk first
    assert "LEVEL_4 given" in first.text and "high" in first.text and "1: LEVEL_4" in first.text
    assert len(browser.find_elements(By.CSS_SELECTOR, "tr[data-item]")) == 3
    screenshot(browser, "review")

    first.find_element(By.TAG_NAME, "a").click()
    wait_for(browser, lambda b: URGENT in b.find_element(By.CSS_SELECTOR, ".post-text").text, what="the post")
    browser.find_element(By.CSS_SELECTOR, 'form[data-key="claim"] button').click()
    wait_for(browser, lambda b: b.find_element(By.ID, "save-next"), what="the form")
    assert browser.find_element(By.ID, "id-label-urgency-LEVEL_3").is_selected()  # the majority of four labels
    browser.set_window_size(1280, 1700)  # the whole page: post, labels and the form
    try:
        screenshot(browser, "review-item")
    finally:
        browser.set_window_size(1280, 900)
    browser.find_element(By.ID, "id-label-urgency-LEVEL_4").click()
    browser.find_element(By.ID, "id-note").send_keys("Plan and means: escalated to the on-call clinician.")
    browser.find_element(By.ID, "mark-reviewed").click()
    wait_for(browser, lambda b: "Marked reviewed." in b.page_source, what="the confirmation")
    item.refresh_from_db()
    assert item.status == ReviewItem.Status.REVIEWED and item.reviewed_by == reviewer
    assert item.adjudicated["urgency"] == ["LEVEL_4"]

    report = consolidate(tmp_path / "c.xlsx", actor=reviewer)
    rows = list(openpyxl.load_workbook(report.path)["urgency"].iter_rows(values_only=True))
    column = rows[0].index("adjudicated label")
    external_id = Sample.objects.get(pk=urgent).external_id
    assert next(r for r in rows if r[0] == external_id)[column] == "LEVEL_4"


def test_a_user_without_review_sample_cannot_open_the_queue(browser, catalogue):
    make_staff("vic", "workers_app.view_sample")
    log_in(browser, "vic", next_path="/review/")
    wait_for(browser, lambda b: urlsplit(b.current_url).path == "/review/", what="the review URL")
    assert browser.title.startswith("403 Forbidden")
    assert "workers_app.review_sample" in browser.find_element(By.TAG_NAME, "main").text
    assert not browser.find_elements(By.CSS_SELECTOR, "tr[data-item], .empty")
