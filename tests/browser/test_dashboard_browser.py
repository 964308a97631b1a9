"""The fleet dashboard in a real browser against a real agent and real worker processes."""

from __future__ import annotations

import time

import psutil
import pytest
from selenium.webdriver.common.by import By

from tests.browser.conftest import log_in, make_staff, screenshot, wait_for
from tests.helpers import make_samples, wait_until
from tests.worker_processes import assert_all_ok
from workers_app.engine.queues import populate_queues
from workers_app.fleet.rows import select_workers
from workers_app.fleet.services import launch_worker
from workers_app.models import Outcome, Worker
from workers_app.runs.services import RunPlan, create_run, switch_run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
NAME = "annotator_1_urgency"


def cell_state(browser, name: str) -> str:
    return browser.find_element(By.CSS_SELECTOR, f'[data-worker="{name}"]').get_attribute("data-state")


def test_pausing_a_cell_turns_it_paused_without_a_reload_and_the_worker_stops_consuming(browser, agent):
    [row] = select_workers(1, "urgency")
    make_samples(5)
    assert_all_ok([launch_worker(row, actor="test")], agent)
    wait_until(lambda: Outcome.objects.filter(annotator__number=1, domain__slug="urgency").count() == 5,
               what="the worker to annotate the first samples")
    # The workers yield the CPU to the web server (FLEET_WORKER_NICE, 10 by default).
    agent_nice = psutil.Process(agent.process.pid).nice()
    assert psutil.Process(Worker.objects.get(pk=row.pk).pid).nice() == min(19, agent_nice + 10)
    make_staff("operator", "workers_app.view_worker", "workers_app.pause_worker")
    log_in(browser, "operator")
    wait_for(browser, lambda b: len(b.find_elements(By.CSS_SELECTOR, "[data-worker]")) == 30, what="30 cells")
    assert cell_state(browser, NAME) == "running"
    marker = browser.find_element(By.ID, "fleet")
    marker_id = marker.id  # the same element afterwards proves the page was never reloaded

    browser.find_element(By.ID, f"pick-{NAME}").click()
    browser.find_element(By.CSS_SELECTOR, 'button[name="op"][value="pause"]').click()
    clicked = time.monotonic()
    wait_for(browser, lambda b: cell_state(b, NAME) == "paused", timeout=2.0, what="the cell to turn paused")
    seen_after = time.monotonic() - clicked
    assert browser.find_element(By.ID, "fleet").id == marker_id
    assert "pause annotator_1_urgency: " in browser.find_element(By.ID, "action-result").text
    assert Worker.objects.get(pk=row.pk).desired_state == "paused"
    screenshot(browser, "dashboard")

    fresh = make_samples(3, text="A new post queued after the pause.")
    populate_queues(1, "urgency")
    time.sleep(3)
    assert not Outcome.objects.filter(sample_id__in=fresh, annotator__number=1, domain__slug="urgency").exists()
    assert seen_after <= 2.0


def test_stop_asks_for_confirmation_in_a_dialog_and_cancel_changes_nothing(browser, catalogue):
    make_staff("stopper", "workers_app.view_worker", "workers_app.stop_worker")
    log_in(browser, "stopper")
    wait_for(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "[data-worker]"), what="the grid")
    browser.find_element(By.CSS_SELECTOR, 'button[data-select="annotator:2"]').click()
    picked = [box.get_attribute("value") for box in browser.find_elements(By.CSS_SELECTOR, "input[name=workers]")
              if box.is_selected()]
    assert picked == [f"annotator_2_{d}" for d in ("urgency", "therapeutic", "intensity", "adjunct", "modality",
                                                   "redressal")]
    browser.find_element(By.CSS_SELECTOR, 'button[name="op"][value="stop"]').click()
    dialog = wait_for(browser, lambda b: b.find_element(By.ID, "confirm-dialog").is_displayed()
                      and b.find_element(By.ID, "confirm-dialog"), what="the confirmation dialog")
    assert "stop 6 worker(s)" in dialog.text
    dialog.find_element(By.CSS_SELECTOR, 'button[value="cancel"]').click()
    time.sleep(0.5)
    from audit.models import AuditLog

    assert not AuditLog.objects.filter(action="stop_worker").exists()


def test_a_viewer_without_actions_sees_the_grid_and_no_action_buttons(browser, catalogue):
    make_staff("watcher", "workers_app.view_worker")
    log_in(browser, "watcher")
    wait_for(browser, lambda b: len(b.find_elements(By.CSS_SELECTOR, "[data-worker]")) == 30, what="30 cells")
    assert not browser.find_elements(By.CSS_SELECTOR, 'button[name="op"]')
    wait_for(browser, lambda b: "Live · updated" in b.find_element(By.ID, "live-status").text,
             what="a live update")


def test_an_open_dashboard_follows_a_switch_to_another_run(browser, catalogue):
    make_samples(4)
    make_staff("watcher", "workers_app.view_worker")
    log_in(browser, "watcher")
    wait_for(browser, lambda b: "Current run: default" in b.find_element(By.ID, "current-run").text,
             what="the default run named")
    run = create_run(RunPlan(name="urgency-only", annotators=[1], domains=["urgency"]), actor="tester")
    switch_run(run, actor="tester")
    wait_for(browser, lambda b: "Current run: urgency-only" in b.find_element(By.ID, "current-run").text,
             timeout=10, what="the page to follow the switch")
    outside = browser.find_element(By.CSS_SELECTOR, '[data-worker="annotator_2_urgency"]')
    assert "not in this run" in outside.text
    assert "not in this run" not in browser.find_element(By.CSS_SELECTOR, f'[data-worker="{NAME}"]').text


def test_with_400_level_4_items_the_grid_fits_a_1366_x_768_screen_and_the_alert_is_acknowledged(browser, agent):
    from django.conf import settings
    from django.core.management import call_command

    from audit.models import AuditLog
    from tests.browser.screens import doc_screenshot, grid_geometry, laptop_screen
    from workers_app.models import Alert, ReviewItem
    from workers_app.monitoring.review_alerts import alert_level_4_items

    call_command("import_corpus", str(settings.DEMO_CORPUS), verbosity=0)
    row = select_workers(1, None)
    assert_all_ok([launch_worker(worker, actor="test") for worker in row], agent)
    wait_until(lambda: Outcome.objects.filter(annotator__number=1).count() == 40 * 6, timeout=90,
               what="annotator 1's six workers to annotate the demo posts")
    # The demo posts gave a few LEVEL_4 items already; more posts make it 400 open ones, as a real corpus can.
    already = ReviewItem.objects.filter(risk__gte=100).count()
    urgent = make_samples(400 - already, "I have written a goodbye note and I want to end my life.", vary=True)
    ReviewItem.objects.bulk_create(ReviewItem(sample_id=pk, reasons=["level_4"], risk=100) for pk in urgent)
    alert_level_4_items()  # the health sweep's step: one alert per new LEVEL_4 item
    assert Alert.objects.filter(kind="review_level_4", resolved_at__isnull=True).count() == 400
    make_staff("olga", "workers_app.view_worker", "workers_app.acknowledge_alert", "workers_app.review_sample",
               *(f"workers_app.{op}_worker" for op in ("launch", "pause", "resume", "flush", "restart", "stop")))
    with laptop_screen(browser):
        log_in(browser, "olga")
        wait_for(browser, lambda b: "Live · updated" in b.find_element(By.ID, "live-status").text, timeout=10,
                 what="a live update")
        wait_for(browser, lambda b: cell_state(b, "annotator_1_urgency") == "running", timeout=10,
                 what="the running workers")
        [line] = browser.find_elements(By.CSS_SELECTOR, "#open-alerts li.alert-group")
        assert line.find_element(By.TAG_NAME, "a").text == "400 posts rated LEVEL_4 await review →"
        assert line.find_element(By.TAG_NAME, "a").get_attribute("href").endswith("/review/?reason=level_4")
        shape = grid_geometry(browser)
        assert shape["viewport"] == [1366, 768] and shape["cells"] == 30
        assert shape["bottom"] <= 768, f"the grid ends at {shape['bottom']} px, below the 768 px screen"
        assert shape["scrollWidth"] <= shape["clientWidth"] and shape["right"] <= 1366, shape
        doc_screenshot(browser, "dashboard")

        line.find_element(By.XPATH, ".//button[normalize-space()='Acknowledge']").click()
        wait_for(browser, lambda b: not b.find_elements(By.CSS_SELECTOR, "#open-alerts li.alert-group"),
                 timeout=5, what="the alert line to leave the banner")
        assert "review_level_4: 400 acknowledged" in browser.find_element(By.ID, "handled-alerts").text
        assert "acknowledged 400 alerts" in browser.find_element(By.ID, "alert-result").text
        assert browser.find_element(By.ID, "no-alerts").is_displayed()
    assert Alert.objects.filter(acknowledged_by="olga").count() == 400
    assert AuditLog.objects.get(action="acknowledge_alerts").detail == {"alerts": 400}


def test_the_charts_have_time_axes_units_and_values_on_hover(browser, catalogue):
    import math
    from datetime import timedelta

    from django.utils import timezone

    from tests.browser.screens import doc_screenshot, laptop_screen
    from workers_app.models import WorkerMetric

    # A made-up hour of per-minute metrics (what the beat records each minute), to draw and photograph the charts.
    now = timezone.now().replace(second=0, microsecond=0)
    workers = select_workers(None, None)
    WorkerMetric.objects.bulk_create(
        WorkerMetric(worker=w, at=now - timedelta(minutes=back), throughput=int(24 + 10 * math.sin(back / 7)) + w.pk % 5,
                     malformed_rate=((back + w.pk) % 10) / 100, latency_p50_ms=900 + int(150 * math.cos(back / 9)),
                     latency_p95_ms=2300 + int(400 * math.sin(back / 5)), queue_length=back * 7)
        for w in workers for back in range(60))
    make_staff("watcher", "workers_app.view_worker")
    with laptop_screen(browser):
        log_in(browser, "watcher")
        wait_for(browser, lambda b: b.find_element(By.CSS_SELECTOR, "#charts svg.plot"), timeout=10,
                 what="the charts")
        browser.execute_script("document.getElementById('charts-title').scrollIntoView();")
        figure = browser.find_element(By.CSS_SELECTOR, "#charts figure.chart")
        assert "Fleet throughput, last hour" in figure.text and "outcomes / min" in figure.text
        hovers = figure.find_elements(By.CSS_SELECTOR, "rect.hit title")
        assert len(hovers) == 60 and "outcomes / min" in hovers[-1].get_attribute("textContent")
        ticks = [t.text for t in figure.find_elements(By.CSS_SELECTOR, "text.tick")]
        assert any(":" in tick for tick in ticks)  # times along the bottom
        doc_screenshot(browser, "dashboard-charts")
        browser.find_element(By.CSS_SELECTOR, '#charts a[data-range="day"]').click()
        wait_for(browser, lambda b: "last day" in b.find_element(By.CSS_SELECTOR, "#charts figure.chart").text,
                 what="the day's charts")
