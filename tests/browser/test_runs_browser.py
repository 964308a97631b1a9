"""The runs pages in a real headless Chromium: make a run in the form, make it current through the confirmation
dialog, and compare it with an earlier run (outcomes stored directly: the real-worker test is elsewhere)."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.browser.conftest import log_in, make_staff, screenshot, wait_for
from tests.helpers import make_samples, store_outcome
from workers_app.models import Annotator, AnnotatorPrice, Outcome, Run, Sample
from workers_app.runs.services import RunPlan, create_run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
LEVELS = ["LEVEL_0", "LEVEL_1", "LEVEL_2", "LEVEL_1", "LEVEL_3", "LEVEL_0"]  # the baseline's urgency per sample
MOVED = ["LEVEL_1", "LEVEL_2", "LEVEL_2", "LEVEL_1"]  # prompt-v2's, annotator 1: the first two one level up


def on_path(path: str):
    return lambda b: urlsplit(b.current_url).path == path


def test_make_a_run_make_it_current_and_compare_it_with_the_baseline(browser, catalogue):
    samples = make_samples(6, "Exams are stressing me out and I sleep badly this month.", vary=True)
    baseline = create_run(RunPlan(name="baseline", description="prompt v1, small model", annotators=[1, 2, 3],
                                  domains=["urgency", "intensity"]), actor="test")
    for index, sample_id in enumerate(samples):
        for annotator in (1, 2, 3):
            store_outcome(baseline, sample_id, annotator, "urgency", [LEVELS[index]], model="small-model")
    make_staff("rae", "workers_app.view_run", "workers_app.add_run", "workers_app.switch_run",
               "workers_app.compare_runs")

    log_in(browser, "rae", next_path="/runs/")
    wait_for(browser, lambda b: b.find_elements(By.ID, "run-form"), what="the runs page and its form")
    browser.find_element(By.ID, "id_name").send_keys("prompt-v2")
    browser.find_element(By.ID, "id_description").send_keys("urgency wording v2, larger model")
    for name, value in (("annotators", "3"), ("annotators", "4"), ("annotators", "5"), ("domains", "therapeutic"),
                        ("domains", "intensity"), ("domains", "adjunct"), ("domains", "modality"),
                        ("domains", "redressal")):
        browser.find_element(By.CSS_SELECTOR, f'input[name="{name}"][value="{value}"]').click()
    browser.find_element(By.ID, "id_limit").send_keys("4")
    browser.find_element(By.XPATH, "//button[normalize-space()='Make the run']").click()
    wait_for(browser, on_path("/runs/prompt-v2/"), what="the new run's page")
    assert "Made run prompt-v2 with 4 samples" in browser.page_source
    made = Run.objects.get(name="prompt-v2")
    assert (made.annotators, made.domains, made.selection["limit"], made.is_current) == ([1, 2], ["urgency"], 4, False)

    browser.find_element(By.XPATH, "//button[normalize-space()='Make current…']").click()
    dialog = wait_for(browser, lambda b: b.find_element(By.CSS_SELECTOR, "#confirm-dialog[open]"),
                      what="the confirmation dialog")
    assert "Make run prompt-v2 current?" in dialog.text
    dialog.find_element(By.ID, "confirm-yes").click()
    wait_for(browser, on_path("/runs/"), what="the runs list")
    assert "Run prompt-v2 is current" in browser.page_source
    current = browser.find_element(By.CSS_SELECTOR, 'tr[data-run="prompt-v2"]')
    assert "current" in current.find_element(By.CSS_SELECTOR, "th").text
    assert list(Run.objects.filter(is_current=True).values_list("name", flat=True)) == ["prompt-v2"]

    # The new run's workers move the first two labels of annotator 1 one level up, and none of annotator 2's.
    chosen = list(made.members.order_by("sample_id").values_list("sample_id", flat=True))
    assert chosen == samples[:4]
    for index, sample_id in enumerate(chosen):
        store_outcome(made, sample_id, 1, "urgency", [MOVED[index]], prompt_version=2, model="large-model")
        store_outcome(made, sample_id, 2, "urgency", [LEVELS[index]], prompt_version=2, model="large-model")
    for annotator in Annotator.objects.filter(number__in=[1, 2]):
        AnnotatorPrice.objects.create(annotator=annotator, input_per_1k=Decimal("0.5"),
                                      output_per_1k=Decimal("1.5"), currency="USD")
    Outcome.objects.filter(run=made).update(cost=Decimal("0.0021"))
    browser.refresh()
    wait_for(browser, lambda b: "8 / 8 (100 %)" in b.find_element(By.CSS_SELECTOR, 'tr[data-run="prompt-v2"]').text,
             what="the new run's progress")
    assert "0.0168 USD" in browser.find_element(By.CSS_SELECTOR, 'tr[data-run="prompt-v2"]').text
    screenshot(browser, "runs")

    browser.get(f"{browser.base}/runs/prompt-v2/")
    cell = wait_for(browser, lambda b: b.find_element(By.CSS_SELECTOR, 'td[data-worker="1-urgency"]'),
                    what="the run page's workers")
    assert cell.text.startswith("4 / 4") and "0 malformed" in cell.text
    urgency = browser.find_element(By.CSS_SELECTOR, 'section[aria-labelledby="domain-urgency"]')
    prompt = urgency.find_element(By.CSS_SELECTOR, "pre.prompt")
    assert not prompt.is_displayed()  # folded until asked for
    urgency.find_element(By.TAG_NAME, "summary").click()
    assert made.pinned["domains"]["urgency"]["prompt_template"].splitlines()[0].strip() in prompt.text
    seen = browser.find_element(By.XPATH, "//h2[@id='seen']/following-sibling::table[1]").text
    assert "urgency 1 2 large-model 4" in seen and "urgency 2 2 large-model 4" in seen
    Select(wait_for(browser, lambda b: b.find_element(By.NAME, "b"), what="the compare form")
           ).select_by_visible_text("baseline")
    browser.find_element(By.XPATH, "//button[normalize-space()='Compare']").click()
    table = wait_for(browser, lambda b: b.find_element(By.CSS_SELECTOR, 'table.compare[data-domain="urgency"]'),
                     what="the comparison")
    assert urlsplit(browser.current_url).query == "a=prompt-v2&b=baseline"
    rows = {row.get_attribute("data-annotator"): row.text for row in table.find_elements(By.CSS_SELECTOR, "tbody tr")}
    assert set(rows) == {"1", "2"}  # annotator 3 is not in prompt-v2
    # Annotator 1, ranks (1,0) (2,1) (2,2) (1,1): observed squared distance 2/4; shares of ranks 1, 2 in prompt-v2
    # 1/2, 1/2 and of ranks 0, 1, 2 in baseline 1/4, 1/2, 1/4: expected (1/4 x 1 + 1/2 x 0 + 1/4 x 1) / 2
    # + (1/4 x 4 + 1/2 x 1 + 1/4 x 0) / 2 = 1/4 + 3/4 = 1; kappa = 1 - 1/2 = 0.5.
    assert rows["1"].startswith("annotator 1 4 50.0 % 0.500") and "v2 · large-model (4)" in rows["1"]
    assert "v1 · small-model (6)" in rows["1"]
    assert rows["2"].startswith("annotator 2 4 100.0 %")
    changes = browser.find_element(By.CSS_SELECTOR, 'details[data-changes="urgency-1"]')
    changes.find_element(By.TAG_NAME, "summary").click()
    moved = [Sample.objects.get(pk=pk).external_id for pk in chosen[:2]]
    cells = [row.text for row in changes.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert cells == [f"{moved[0]} LEVEL_1 LEVEL_0", f"{moved[1]} LEVEL_2 LEVEL_1"]
    screenshot(browser, "runs-compare")
