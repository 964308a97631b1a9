"""The annotation browser in a real headless Chromium: log in, search and filter, open a post, expand a raw answer
with the keyboard."""

from __future__ import annotations

import pytest

from tests.browser.conftest import log_in, make_staff, screenshot, wait_for
from tests.helpers import make_samples
from tests.test_samples_pages import store_all

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

POSTS = ["I sleep badly before every exam and feel on edge.", "My family argues and I feel alone at home.",
         "I have a plan to end my life tonight.", "Work pressure keeps me up; I want calmer mornings."]


def test_search_filter_open_a_post_and_read_a_raw_answer_with_the_keyboard(browser, catalogue):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from workers_app.models import Outcome, ReviewItem

    ids = [make_samples(1, text)[0] for text in POSTS]
    for pk in ids:
        store_all(pk)
    urgent = ids[2]
    Outcome.objects.filter(sample_id=urgent, annotator__number=1, domain__slug="urgency").update(
        labels=["LEVEL_4"], raw_answer="The writer states a plan for tonight. <<LEVEL_4>>")
    ReviewItem.objects.create(sample_id=urgent, reasons=["level_4"], risk=3)
    make_staff("browser-viewer", "workers_app.view_sample")

    log_in(browser, "browser-viewer", next_path="/samples/")
    wait_for(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "table.samples tbody tr"), what="the sample list")
    assert len(browser.find_elements(By.CSS_SELECTOR, "table.samples tbody tr")) == len(POSTS)
    screenshot(browser, "samples")

    search = browser.find_element(By.ID, "id_q")
    search.send_keys("family argues", Keys.ENTER)
    wait_for(browser, lambda b: len(b.find_elements(By.CSS_SELECTOR, "table.samples tbody tr")) == 1,
             what="the search result")
    assert "family argues" in browser.find_element(By.CSS_SELECTOR, "table.samples tbody").text

    browser.find_element(By.ID, "id_q").clear()
    browser.find_element(By.ID, "id_level_4").click()
    browser.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    wait_for(browser, lambda b: "level_4=on" in b.current_url, what="the LEVEL_4 filter")
    rows = browser.find_elements(By.CSS_SELECTOR, "table.samples tbody tr")
    assert len(rows) == 1 and "LEVEL_4" in rows[0].text and "open" in rows[0].text
    assert browser.find_element(By.ID, "id_level_4").is_selected()  # the form keeps its values

    rows[0].find_element(By.CSS_SELECTOR, "th a").click()
    wait_for(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "table.grid"), what="the sample page")
    assert "I have a plan to end my life tonight." in browser.find_element(By.CSS_SELECTOR, ".post-text").text
    assert len(browser.find_elements(By.CSS_SELECTOR, "table.grid td[data-cell]")) == 30

    cell = browser.find_element(By.CSS_SELECTOR, 'td[data-cell="annotator_1_urgency"]')
    raw = cell.find_element(By.CSS_SELECTOR, "pre.raw")
    assert not raw.is_displayed()
    keyboard = ActionChains(browser)
    for _ in range(80):  # from the top of the page, Tab reaches the grid's first <summary>: annotator 1's urgency
        keyboard.send_keys(Keys.TAB).perform()
        if browser.switch_to.active_element.tag_name == "summary":
            break
    focused = browser.switch_to.active_element
    assert focused.tag_name == "summary" and focused.find_element(By.XPATH, "../..") == cell
    focused.send_keys(Keys.ENTER)
    wait_for(browser, lambda b: raw.is_displayed(), what="the raw answer to open")
    assert "The writer states a plan for tonight. <<LEVEL_4>>" in raw.text
    browser.execute_script("document.getElementById('labels').scrollIntoView()")
    screenshot(browser, "sample")
