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
