"""The quality page in a real headless Chromium: a reference set of three raters imported through the form, then
the annotators side by side with their intervals, the confusion matrix as a heat table, the Alternative Annotator
Test, and an annotator's worst item followed to its sample page (outcomes stored directly: the real-worker tests
are elsewhere). Its screenshot at 1366x768 is the README's docs/screenshots/quality.png."""

from __future__ import annotations

import random
from urllib.parse import urlsplit

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.browser.conftest import log_in, make_staff, wait_for
from tests.browser.screens import doc_screenshot, laptop_screen
from tests.helpers import make_samples, store_outcome
from workers_app.models import ReferenceSet, Sample
from workers_app.runs.current import current_run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
LEVELS = ["LEVEL_0", "LEVEL_1", "LEVEL_2", "LEVEL_3", "LEVEL_4"]
# How often each annotator agrees with the raters' consensus (made-up annotators for the picture).
SKILL = {1: 0.85, 2: 0.7, 3: 0.6, 4: 0.45, 5: 0.3}


def test_import_a_reference_set_and_read_the_quality_of_the_run(browser, catalogue, tmp_path):
    rng = random.Random(11)
    samples = make_samples(60, "I have been feeling low and cannot sleep before exams.", vary=True)
    truth = {s: rng.choices(LEVELS, weights=[3, 3, 2, 1, 1])[0] for s in samples}
    for number, skill in SKILL.items():
        for sample in samples:
            if rng.random() < 0.05 * number / 5:
                store_outcome(current_run(), sample, number, "urgency", [], status="malformed")
            else:
                store_outcome(current_run(), sample, number, "urgency",
                              [truth[sample] if rng.random() < skill else rng.choice(LEVELS)])
    names = dict(Sample.objects.values_list("pk", "external_id"))
    rows = ["post,rater,risk"]
    for sample in samples:
        for rater in ("psychiatrist-a", "psychiatrist-b", "psychiatrist-c"):
            label = truth[sample] if rng.random() < 0.8 else rng.choice(LEVELS)
            rows.append(f"{names[sample]},{rater},{label}")
    path = tmp_path / "raters.csv"
    path.write_text("\n".join(rows) + "\n")
    make_staff("rae", "workers_app.view_quality", "workers_app.view_referenceset", "workers_app.add_referenceset",
               "workers_app.view_sample")

    log_in(browser, "rae", next_path="/quality/references/")
    wait_for(browser, lambda b: b.find_elements(By.ID, "reference-form"), what="the import form")
    browser.find_element(By.ID, "id_file").send_keys(str(path))
    for field, value in (("id_name", "three-raters"), ("id_id_column", "post"), ("id_label_columns", "urgency=risk"),
                         ("id_rater_column", "rater"), ("id_raters", "3"),
                         ("id_source", "made-up raters of the browser test"),
                         ("id_citation", "Test data, not a clinical reference")):
        browser.find_element(By.ID, field).send_keys(value)
    browser.find_element(By.XPATH, "//button[normalize-space()='Import']").click()
    wait_for(browser, lambda b: "reference set three-raters: 180 label(s) from 3 raters" in b.page_source,
             what="the import's message")
    assert ReferenceSet.objects.get(name="three-raters").raters == 3

    browser.get(f"{browser.base}/quality/")
    Select(wait_for(browser, lambda b: b.find_element(By.NAME, "reference"), what="the choice of set")
           ).select_by_value("three-raters")
    browser.find_element(By.XPATH, "//button[normalize-space()='Show']").click()
    # the table of the page that answered Show, not one of the page before it (a stale element once it is gone)
    table = wait_for(browser, lambda b: "reference=three-raters" in b.current_url and b.find_element(
        By.CSS_SELECTOR, 'table.quality[data-domain="urgency"]'), what="the quality table")
    assert urlsplit(browser.current_url).query == "run=default&reference=three-raters"
    labellers = [row.get_attribute("data-row") for row in table.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert labellers == ["annotator-1", "annotator-2", "annotator-3", "annotator-4", "annotator-5", "majority",
                         "dawid_skene"]
    accuracy = {row.get_attribute("data-row"): float(row.find_elements(By.CSS_SELECTOR, ".figure")[0].text)
                for row in table.find_elements(By.CSS_SELECTOR, "tbody tr")}
    assert accuracy["annotator-1"] > accuracy["annotator-3"] > accuracy["annotator-5"]
    assert len(table.find_elements(By.CSS_SELECTOR, ".bar .range")) >= 5 * 5  # intervals drawn
    verdicts = {row.get_attribute("data-annotator"): row.text for row in
                browser.find_elements(By.CSS_SELECTOR, 'table.alt-test[data-domain="urgency"] tbody tr')}
    assert "may replace a rater" in verdicts["1"] and "may not replace a rater" in verdicts["5"]
    first = browser.find_element(By.CSS_SELECTOR, 'details[data-details="urgency-annotator-1"]')
    assert first.get_attribute("open") is not None
    cells = first.find_elements(By.CSS_SELECTOR, "table.confusion td")
    assert len(cells) == 25 and sum(int(c.text) for c in cells) > 0
    with laptop_screen(browser):
        browser.execute_script("document.getElementById('quality-urgency').scrollIntoView()")
        doc_screenshot(browser, "quality")

    worst = first.find_element(By.CSS_SELECTOR, "table.worst tbody tr td a")
    external_id = worst.text
    worst.click()
    wait_for(browser, lambda b: urlsplit(b.current_url).path.startswith("/samples/"), what="the sample page")
    assert external_id in browser.page_source
