"""A reviewer works through the clinical review queue with the keyboard only, in a real browser: log in, open the
first item, claim, pick codes by their number, write the issues of the free-text domain, save and go on, three
items in a row. Also the error pages, as a visitor meets them. Screenshots at 1366 x 768 for the README."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from audit.models import AuditLog
from tests.browser.conftest import PASSWORD, make_staff, wait_for
from tests.browser.screens import doc_screenshot, laptop_screen
from tests.helpers import make_samples
from tests.test_review import row, store
from workers_app.models import ReviewItem

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

POSTS = [
    "I have written goodbye letters and I keep thinking about how I would end my life. I am scared of myself.",
    "Some days I feel fine, other days I can't get out of bed and I stop eating. Nobody notices either way.",
    "Exams are close and I sleep four hours a night. My parents say I am lazy and I cry every evening.",
]


def press(browser, *keys: str) -> None:
    """Keys typed into whatever has the focus, as a person at the keyboard would."""
    ActionChains(browser).send_keys(*keys).perform()


def item_of(browser) -> ReviewItem:
    return ReviewItem.objects.get(pk=int(browser.current_url.rstrip("/").split("/")[-1].split("?")[0]))


def open_item(browser, pk: int) -> None:
    wait_for(browser, lambda b: f"/review/{pk}/" in b.current_url and b.find_elements(By.ID, "item-status"),
             timeout=10, what=f"review item {pk}")


def claimed(browser) -> None:
    wait_for(browser, lambda b: b.find_elements(By.ID, "save-next"), timeout=10, what="the claimed item's form")


@pytest.fixture
def three_items(catalogue):
    """A LEVEL_4, a three-level spread and a two-level spread, as workers would have stored them."""
    ids = [make_samples(1, text)[0] for text in POSTS]
    store(1, "urgency", [row(ids[0], 1, "urgency", ["LEVEL_4"])])
    for number, level in ((2, 3), (3, 3)):
        store(number, "urgency", [row(ids[0], number, "urgency", [f"LEVEL_{level}"])])
    store(1, "urgency", [row(ids[1], 1, "urgency", ["LEVEL_0"])])
    store(2, "urgency", [row(ids[1], 2, "urgency", ["LEVEL_3"])])
    store(1, "urgency", [row(ids[2], 1, "urgency", ["LEVEL_1"])])
    store(2, "urgency", [row(ids[2], 2, "urgency", ["LEVEL_3"])])
    store(1, "redressal", [row(ids[1], 1, "redressal", ["low mood"])])
    items = [ReviewItem.objects.get(sample_id=pk) for pk in ids]
    assert [i.risk for i in items] == sorted((i.risk for i in items), reverse=True)  # the queue's order
    return items


def test_a_reviewer_adjudicates_three_items_with_the_keyboard_only(browser, three_items):
    first, second, third = three_items
    reviewer = make_staff("rita", "workers_app.review_sample", "workers_app.view_sample")
    with laptop_screen(browser):
        browser.get(f"{browser.base}/admin/login/?next=/review/")
        browser.find_element(By.NAME, "username").send_keys("rita", Keys.TAB, PASSWORD, Keys.ENTER)
        wait_for(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "tr[data-item]"), timeout=10, what="the queue")
        assert "You: 0 reviewed today · 0 in all · 0 claimed now" in browser.find_element(By.ID, "my-counters").text
        doc_screenshot(browser, "review")

        press(browser, "j")  # the first item of the queue
        open_item(browser, first.pk)
        assert "item 1 of 3" in browser.find_element(By.ID, "position").text
        press(browser, "j")
        open_item(browser, second.pk)
        press(browser, "k")  # and back
        open_item(browser, first.pk)

        # 1. Claim, LEVEL_4 (the fifth urgency code), then TA-2 and TA-9 in the next domain; save and next.
        press(browser, "c")
        claimed(browser)
        assert browser.switch_to.active_element.get_attribute("name") == "label-urgency"
        press(browser, "5", "]", "2", "9")
        assert browser.find_element(By.ID, "id-label-urgency-LEVEL_4").is_selected()
        doc_screenshot(browser, "review-item")
        press(browser, "s")
        open_item(browser, second.pk)

        # 2. Claim, LEVEL_2, not adjudicated intensity left alone, the issues typed in the free-text domain; Esc leaves
        # the text box so that "s" saves instead of typing.
        press(browser, "c")
        claimed(browser)
        press(browser, "3", "]", "]", "]", "]", "]")
        assert browser.switch_to.active_element.get_attribute("name") == "label-redressal"
        active = browser.switch_to.active_element
        active.send_keys(Keys.CONTROL, "a")
        active.send_keys("sleep problems", Keys.ENTER, "stopped eating", Keys.ESCAPE)
        press(browser, "s")
        open_item(browser, third.pk)

        # 3. Claim, LEVEL_2 again, and Ctrl+Enter from anywhere: the last item, so back to the queue.
        press(browser, "c")
        claimed(browser)
        press(browser, "3")
        ActionChains(browser).key_down(Keys.CONTROL).send_keys(Keys.ENTER).key_up(Keys.CONTROL).perform()
        wait_for(browser, lambda b: "That was the last item of this queue." in b.page_source, timeout=10,
                 what="the end of the queue")
        assert "You: 3 reviewed today · 3 in all · 0 claimed now" in browser.find_element(By.ID, "my-counters").text

    done = {item.pk: item for item in ReviewItem.objects.filter(pk__in=[i.pk for i in three_items])}
    assert all(item.status == ReviewItem.Status.REVIEWED and item.reviewed_by == reviewer for item in done.values())
    assert done[first.pk].adjudicated == {"urgency": ["LEVEL_4"], "therapeutic": ["TA-2", "TA-9"]}
    assert done[second.pk].adjudicated == {"urgency": ["LEVEL_2"], "redressal": ["sleep problems", "stopped eating"]}
    assert done[third.pk].adjudicated == {"urgency": ["LEVEL_2"]}
    steps = list(AuditLog.objects.filter(actor="rita", action__in=["claim_review", "adjudicate_review"])
                 .values_list("action", "result"))
    assert steps.count(("claim_review", "ok")) == 3 and steps.count(("adjudicate_review", "ok")) == 3


def test_the_error_pages_name_what_is_missing_and_lead_back(browser, three_items):
    from admin_ops.services.roles import seed_roles

    seed_roles(actor="test")  # as ./run.sh does: the page names the groups that grant what is missing
    make_staff("vic", "workers_app.view_sample")
    with laptop_screen(browser):
        browser.get(f"{browser.base}/admin/login/?next=/samples/")
        browser.find_element(By.NAME, "username").send_keys("vic", Keys.TAB, PASSWORD, Keys.ENTER)
        wait_for(browser, lambda b: "/samples/" in b.current_url and b.find_elements(By.TAG_NAME, "main"),
                 what="the samples page")
        # Followed from the samples page (as a link would be), so the page knows the way back.
        browser.execute_script("window.location.assign(arguments[0])", f"/review/{three_items[0].pk}/")
        wait_for(browser, lambda b: "/review/" in b.current_url, what="the review page")
        main = browser.find_element(By.TAG_NAME, "main").text
        assert browser.title.startswith("403 Forbidden") and "workers_app.review_sample" in main
        assert "You are logged in as vic" in main and "The role groups operator, reviewer grant it." in main
        doc_screenshot(browser, "error-403")
        browser.find_element(By.LINK_TEXT, "← Back").click()
        wait_for(browser, lambda b: b.current_url.endswith("/samples/"), what="the way back")

        external_id = three_items[0].sample.external_id
        browser.get(f"{browser.base}/samples/{external_id}/")
        wait_for(browser, lambda b: f"Sample {external_id}" in b.find_element(By.TAG_NAME, "h1").text,
                 what="the sample opened by its external id")
        browser.get(f"{browser.base}/samples/NOPE-404/")
        assert browser.title.startswith("404 Not found")
        assert "no sample with the id or external id 'NOPE-404'" in browser.find_element(By.TAG_NAME, "main").text
        doc_screenshot(browser, "error-404")
