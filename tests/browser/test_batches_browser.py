"""Provider batches in the Django admin, in a real headless Chromium: an operator finds the batch in flight, cancels
it with the admin action and reads the outcome; a viewer sees the list but is offered no cancel. The batch is
submitted in this process to the loopback batch API (the kills of real workers are in test_batch_survival.py)."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from audit.models import AuditLog
from tests.batches import one_batch_in_flight
from tests.browser.conftest import log_in, make_staff, screenshot, wait_for
from tests.fake_batch import serving_fake_batch_api

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
BATCHES = "/admin/workers_app/batch/"


@pytest.fixture
def batch_in_flight(catalogue):
    with serving_fake_batch_api() as fake:
        batch = one_batch_in_flight(fake)
        batch.refresh_from_db()  # its provider id, recorded after the row was made
        yield fake, batch


def batch_row(browser, ref: str):
    return wait_for(browser, lambda b: b.find_element(By.XPATH, f"//tr[.//*[normalize-space()='{ref}']]"),
                    what=f"the row of batch {ref}")


def test_an_operator_cancels_a_batch_in_flight_from_the_admin(browser, batch_in_flight):
    fake, batch = batch_in_flight
    make_staff("otto", "workers_app.view_batch", "workers_app.pause_worker")
    log_in(browser, "otto", next_path=BATCHES)
    row = batch_row(browser, batch.ref)
    assert browser.find_element(By.CSS_SELECTOR, ".breadcrumbs").text.endswith("Batches")
    assert batch.provider_id and batch.provider_id in row.text and "in flight" in row.text.lower()

    row.find_element(By.CSS_SELECTOR, 'input[name="_selected_action"]').click()
    Select(browser.find_element(By.NAME, "action")).select_by_value("cancel_at_provider")
    browser.find_element(By.CSS_SELECTOR, 'button[name="index"]').click()
    message = wait_for(browser, lambda b: b.find_element(By.CSS_SELECTOR, "ul.messagelist li"),
                       what="the admin's message")
    screenshot(browser, "batch-cancelled")
    assert "the provider accepted 1 of 1 cancellation(s)" in message.text.lower()
    assert fake.batches[batch.provider_id].status == "cancelled"
    assert AuditLog.objects.filter(action="cancel_batches", actor="otto", target=batch.ref).count() == 1


def test_a_viewer_sees_the_batches_but_is_offered_no_cancel(browser, batch_in_flight):
    fake, batch = batch_in_flight
    make_staff("vera", "workers_app.view_batch")
    log_in(browser, "vera", next_path=BATCHES)
    batch_row(browser, batch.ref)
    actions = browser.find_elements(By.NAME, "action")
    offered = [option.get_attribute("value") for option in Select(actions[0]).options] if actions else []
    assert "cancel_at_provider" not in offered
    assert fake.batches[batch.provider_id].status == "in_progress"
