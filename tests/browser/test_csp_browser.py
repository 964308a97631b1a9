"""In a real browser, under the site's strict Content-Security-Policy, the pages work and nothing is refused: the
dashboard updates, the charts and the API docs render, and the console reports no policy violation."""

from __future__ import annotations

import pytest
from django_celery_beat.models import PeriodicTask
from selenium.webdriver.common.by import By

from tests.browser.conftest import log_in, make_staff, screenshot, wait_for
from tests.helpers import make_samples
from workers_app.fleet.rows import ensure_worker_rows

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def violations(browser) -> list[str]:
    return [entry["message"] for entry in browser.get_log("browser") if "Content Security Policy" in entry["message"]]


def test_the_pages_work_under_the_policy_and_break_none_of_it(browser, catalogue):
    ensure_worker_rows()
    make_samples(3)
    make_staff("root", superuser=True)
    log_in(browser, "root")
    wait_for(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "[data-worker]"), what="the dashboard's cells")
    browser.get_log("browser")  # only what the pages below report counts

    task = PeriodicTask.objects.first()
    for path in ("/dashboard/", "/samples/", "/review/", "/files/", "/runs/", "/admin/workers_app/worker/",
                 f"/admin/django_celery_beat/periodictask/{task.pk}/change/"):
        browser.get(f"{browser.base}{path}")
        wait_for(browser, lambda b: b.execute_script("return document.readyState") == "complete", what=path)
    browser.get(f"{browser.base}/dashboard/")
    wait_for(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#charts figure"), timeout=10,
             what="the charts loaded after the page")
    browser.get(f"{browser.base}/api/v1/docs")
    wait_for(browser, lambda b: b.find_elements(By.CSS_SELECTOR, ".opblock"), timeout=15,
             what="Swagger UI's operations")
    screenshot(browser, "csp-api-docs")

    assert violations(browser) == []
