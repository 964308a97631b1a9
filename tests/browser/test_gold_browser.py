"""The dashboard of a run with gold checks in a real browser: every cell of the run shows its annotator's gold
accuracy (red below the threshold), the gold alert is one line, and the grid still fits a 1366 x 768 screen."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from tests.browser.conftest import log_in, make_staff, screenshot, wait_for
from tests.browser.screens import grid_geometry, laptop_screen
from tests.helpers import make_reference, make_samples
from workers_app.engine.gold import BUILT, gold_key
from workers_app.models import Sample
from workers_app.monitoring.gold import gold_sweep
from workers_app.redis_client import get_redis
from workers_app.runs.gold import GoldPlan
from workers_app.runs.services import RunPlan, create_run, switch_run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
# Each annotator's gold answers, oldest first (1 right): annotator 2 has fallen to 2 of 7.
ANSWERS = {"1": "1111111011", "2": "1010000", "3": "111", "4": "1101", "5": ""}


def test_every_cell_shows_the_gold_accuracy_and_the_grid_still_fits_the_screen(browser, catalogue):
    work = make_samples(40, vary=True)
    gold = make_samples(10, "A gold post", vary=True)
    reference = make_reference("experts", {(s, "urgency", ""): ["LEVEL_1"] for s in gold})
    run = create_run(RunPlan(name="checked", corpora=[Sample.objects.get(pk=work[0]).corpus_id],
                             gold=GoldPlan(reference, share=0.25, threshold=0.7, min_items=4)), actor="test")
    switch_run(run, actor="test")
    get_redis().hset(gold_key(run.pk), mapping={**ANSWERS, BUILT: 1})
    gold_sweep()
    make_staff("olga", "workers_app.view_worker")
    with laptop_screen(browser):
        log_in(browser, "olga")
        wait_for(browser, lambda b: "Live · updated" in b.find_element(By.ID, "live-status").text, timeout=10,
                 what="a live update")
        cell = browser.find_element(By.CSS_SELECTOR, '[data-worker="annotator_2_urgency"] [data-field="gold"]')
        assert cell.text == "gold 0.29 over 7" and "failing" in cell.get_attribute("class")
        fine = browser.find_element(By.CSS_SELECTOR, '[data-worker="annotator_1_intensity"] [data-field="gold"]')
        assert fine.text == "gold 0.90 over 10" and "failing" not in fine.get_attribute("class")
        unjudged = browser.find_element(By.CSS_SELECTOR, '[data-worker="annotator_5_modality"] [data-field="gold"]')
        assert unjudged.text == "gold —"
        [line] = browser.find_elements(By.CSS_SELECTOR, "#open-alerts li.alert-group")
        assert line.find_element(By.TAG_NAME, "a").text == "1 annotator below its gold accuracy: its workers paused →"
        shape = grid_geometry(browser)
        assert shape["viewport"] == [1366, 768] and shape["cells"] == 30
        assert shape["bottom"] <= 768, f"the grid ends at {shape['bottom']} px, below the 768 px screen"
        assert shape["scrollWidth"] <= shape["clientWidth"] and shape["right"] <= 1366, shape
        screenshot(browser, "dashboard-gold")
