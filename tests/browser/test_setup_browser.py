"""Setting up, running and exporting a study in a real headless Chromium, without the Django admin: a new reviewer
added and logging in, a corpus refused by its bad row and then imported, an annotator tried against the loopback
LLM, a prompt edit that makes a new version, an API token, and a run consolidated from its page and downloaded from
/files/. Jobs run on a real control worker. Each page is photographed at 1366 × 768 (page_screenshot)."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

import openpyxl
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from api.models import ApiToken
from tests.browser.conftest import log_in, make_staff, wait_for
from tests.browser.screens import page_screenshot
from tests.helpers import make_samples, store_outcome, wait_until
from tests.worker_processes import WorkerProcess
from workers_app.models import Corpus, Domain, Outcome, Sample
from workers_app.runs.current import current_run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "a long passphrase for rita"
POSTS = [
    ("MH-101", "Exams are stressing me out and I sleep badly this month."),
    ("MH-102", "My partner and I keep arguing and I feel alone."),
    ("MH-103", "I would like a book about handling stress."),
    ("MH-104", "Panic attacks stop me leaving the house most days."),
]


@pytest.fixture
def roles(catalogue):
    call_command("seed_defaults")


@pytest.fixture
def operator(roles):
    """An operator who may also manage people: what a study's lead would be given."""
    user = make_staff("olga", "admin_ops.manage_people")
    user.groups.add(Group.objects.get(name="operator"))
    return user


@pytest.fixture
def control():
    worker = WorkerProcess("control").wait_ready()
    yield worker
    worker.stop()


def on_path(path: str):
    return lambda b: urlsplit(b.current_url).path == path


def job_ended(browser, worker: WorkerProcess, timeout: float = 120.0):
    """The job page, followed by its own script, once the job is done or failed."""
    return wait_for(browser, lambda b: b.find_element(By.CSS_SELECTOR, '#job[data-status="done"], '
                                                                        '#job[data-status="failed"]'),
                    timeout=timeout, what=f"the job to end; control worker:\n{worker.log.read_text()[-2000:]}")


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("ref,content,source\n" + "".join(f'{i},"{t}",forum\n' for i, t in rows), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------ people


def test_a_new_reviewer_is_added_in_the_workspace_and_logs_in(browser, operator):
    log_in(browser, "olga", next_path="/setup/people/")
    wait_for(browser, lambda b: b.find_element(By.ID, "add-form"), what="the people page")
    browser.find_element(By.ID, "id_username").send_keys("rita")
    browser.find_element(By.ID, "id_email").send_keys("rita@example.org")
    Select(browser.find_element(By.ID, "id_role")).select_by_visible_text("reviewer")
    browser.find_element(By.XPATH, "//button[normalize-space()='Add and make an invitation link']").click()

    link = wait_for(browser, lambda b: b.find_element(By.ID, "invitation-link"), what="the invitation link")
    invitation = link.get_attribute("value")
    row = browser.find_element(By.CSS_SELECTOR, 'tr[data-person="rita"]')
    assert row.find_element(By.CSS_SELECTOR, '[data-field="role"]').text == "reviewer"
    assert row.find_element(By.CSS_SELECTOR, '[data-field="status"]').text == "invited"
    page_screenshot(browser, "setup-people")
    rita = get_user_model().objects.get(username="rita")
    assert rita.is_staff and not rita.is_superuser  # nobody ticked "staff status" anywhere

    browser.delete_all_cookies()  # Rita, in her own browser
    browser.get(invitation)
    wait_for(browser, lambda b: "Welcome, rita" in b.find_element(By.TAG_NAME, "h1").text, what="the welcome page")
    browser.find_element(By.ID, "id_new_password1").send_keys(PASSWORD)
    browser.find_element(By.ID, "id_new_password2").send_keys(PASSWORD)
    browser.find_element(By.XPATH, "//button[normalize-space()='Set my password']").click()
    wait_for(browser, on_path("/welcome/done/"), what="the password set")
    browser.find_element(By.ID, "log-in").click()
    browser.find_element(By.NAME, "username").send_keys("rita")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit], button[type=submit]").click()

    wait_for(browser, on_path("/dashboard/"), what="Rita's landing page")
    assert browser.find_element(By.CSS_SELECTOR, ".who").text == "rita"
    browser.find_element(By.LINK_TEXT, "Review").click()
    wait_for(browser, on_path("/review/"), what="the review queue")
    assert "403" not in browser.title and browser.find_element(By.TAG_NAME, "h1").text
    browser.get(invitation)  # the link worked once
    wait_for(browser, lambda b: "does not work" in b.find_element(By.TAG_NAME, "h1").text, what="a used link")


# ------------------------------------------------------------------------------------------------ corpora


def test_a_corpus_is_refused_by_its_bad_row_then_fixed_and_imported(browser, operator, control, tmp_path):
    bad = write_csv(tmp_path / "posts.csv", [*POSTS[:2], ("MH-103", ""), POSTS[3]])
    log_in(browser, "olga", next_path="/setup/corpora/")
    wait_for(browser, lambda b: b.find_element(By.ID, "upload-form"), what="the corpora page")
    browser.find_element(By.NAME, "file").send_keys(str(bad))
    browser.find_element(By.XPATH, "//button[normalize-space()='Upload and preview']").click()

    wait_for(browser, lambda b: b.find_element(By.ID, "choice-form"), what="the preview")
    columns = browser.find_element(By.XPATH, "//h2[@id='columns']/following-sibling::table[1]").text
    assert "ref, content, source" in columns
    assert "no id column" in browser.find_element(By.ID, "preview-problem").text  # "ref" is no default name
    Select(browser.find_element(By.ID, "id_id_column")).select_by_visible_text("ref")
    Select(browser.find_element(By.ID, "id_text_column")).select_by_visible_text("content")
    browser.find_element(By.XPATH, "//button[normalize-space()='Show the first rows with these choices']").click()
    table = wait_for(browser, lambda b: b.find_element(By.ID, "first-rows-table"), what="the first rows")
    assert table.find_element(By.CSS_SELECTOR, "tbody tr").text == f"2 MH-101 {POSTS[0][1]}"
    page_screenshot(browser, "setup-corpus-preview")

    browser.find_element(By.XPATH, "//button[normalize-space()='Import']").click()
    job_ended(browser, control)
    problems = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "li[data-problem]")]
    assert problems == ["posts.csv, row 4, field 'text': empty text"]
    assert "1 problem; nothing was imported" in browser.find_element(By.ID, "job").text
    assert Corpus.objects.count() == 0 and Sample.objects.count() == 0
    page_screenshot(browser, "setup-corpus-refused")

    (tmp_path / "fixed").mkdir()
    fixed = write_csv(tmp_path / "fixed" / "posts.csv", POSTS)
    browser.find_element(By.LINK_TEXT, "Upload a fixed file").click()
    browser.find_element(By.NAME, "file").send_keys(str(fixed))
    browser.find_element(By.XPATH, "//button[normalize-space()='Upload and preview']").click()
    wait_for(browser, lambda b: b.find_element(By.ID, "choice-form"), what="the fixed file's preview")
    Select(browser.find_element(By.ID, "id_id_column")).select_by_visible_text("ref")
    Select(browser.find_element(By.ID, "id_text_column")).select_by_visible_text("content")
    browser.find_element(By.XPATH, "//button[normalize-space()='Import']").click()
    job_ended(browser, control)
    assert "imported 4 sample(s)" in browser.find_element(By.ID, "job").text
    assert sorted(Sample.objects.values_list("external_id", flat=True)) == [i for i, _ in POSTS]
    page_screenshot(browser, "setup-corpus-imported")


# ------------------------------------------------------------------------------------------------ annotators


def test_try_it_shows_three_raw_answers_from_the_loopback_llm(browser, operator, http_annotator, fake_llm):
    corpus = Corpus.objects.create(file_name="posts.csv", sha256="posts", imported_by="test")
    for row, (external_id, text) in enumerate(POSTS, start=2):
        Sample.objects.create(external_id=external_id, text=text, corpus=corpus, source_row=row)
    fake_llm.content_for = lambda body: ("The post describes ongoing distress without immediate risk. "
                                         f"Final answer: <<LEVEL_{len(body['messages'][0]['content']) % 3 + 1}>>")
    log_in(browser, "olga", next_path="/setup/annotators/1/")
    wait_for(browser, lambda b: b.find_element(By.ID, "settings-form"), what="the annotator's page")
    assert browser.find_element(By.ID, "id_api_key").get_attribute("value") == ""  # write-only
    page_screenshot(browser, "setup-annotator")

    Select(browser.find_element(By.ID, "id_domain")).select_by_value("urgency")
    posts = browser.find_element(By.ID, "id_posts")
    assert posts.get_attribute("value") == "MH-101 MH-102 MH-103"  # three posts chosen for a start
    posts.clear()
    posts.send_keys("MH-104, MH-101, MH-103")
    browser.find_element(By.XPATH, "//button[normalize-space()='Try it']").click()

    answers = wait_for(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "article.answer"), what="the answers")
    assert [a.get_attribute("data-sample") for a in answers] == ["MH-104", "MH-101", "MH-103"]
    for answer in answers:
        raw = answer.find_element(By.CSS_SELECTOR, '[data-field="raw"]').text
        assert raw.startswith("The post describes ongoing distress") and "<<LEVEL_" in raw
        assert answer.get_attribute("data-ok") == "yes" and "100 in, 12 out" in answer.text
    assert len(fake_llm.requests) == 3 and Outcome.objects.count() == 0
    browser.execute_script("document.getElementById('answers').scrollIntoView()")
    page_screenshot(browser, "setup-annotator-try-it")


# ------------------------------------------------------------------------------------------------ domains


def test_a_prompt_edit_shows_its_changes_and_bumps_the_version(browser, operator):
    log_in(browser, "olga", next_path="/setup/domains/")
    wait_for(browser, lambda b: b.find_element(By.CSS_SELECTOR, 'tr[data-domain="urgency"]'), what="the domains")
    assert browser.find_element(By.CSS_SELECTOR, 'tr[data-domain="urgency"] [data-field="version"]').text == "1"
    browser.find_element(By.LINK_TEXT, "urgency · Urgency").click()
    prompt = wait_for(browser, lambda b: b.find_element(By.ID, "id_prompt_template"), what="the editor")
    prompt.send_keys("\nIf the post mentions a plan and a date, answer LEVEL_4.")
    meaning = browser.find_element(By.ID, "id_codes-4-description")
    meaning.clear()
    meaning.send_keys("critical: a plan, means or date; immediate risk to life")
    browser.find_element(By.XPATH, "//button[normalize-space()='Review the changes']").click()

    review = wait_for(browser, lambda b: b.find_element(By.ID, "review"), what="the changes")
    diff = review.find_element(By.CSS_SELECTOR, '[data-field="prompt-diff"]').text
    assert "+If the post mentions a plan and a date, answer LEVEL_4." in diff
    assert "now critical: a plan, means or date" in review.find_element(By.CSS_SELECTOR, 'li[data-code="LEVEL_4"]').text
    assert Domain.objects.get(slug="urgency").prompt_version == 1  # nothing saved by a review
    page_screenshot(browser, "setup-domain-review")

    browser.find_element(By.XPATH, "//button[normalize-space()='Save as version 2']").click()
    wait_for(browser, lambda b: "Saved urgency as prompt version 2" in b.page_source, what="the saved edit")
    assert browser.find_element(By.ID, "version").text == "prompt version 2"
    assert "Version 1 → 2, by olga" in browser.find_element(By.CSS_SELECTOR, "details.revision summary").text
    saved = Domain.objects.get(slug="urgency")
    assert saved.prompt_version == 2 and saved.prompt_template.endswith("answer LEVEL_4.")


# ------------------------------------------------------------------------------------------------ tokens


def test_a_token_is_made_shown_once_and_revoked(browser, roles):
    user = make_staff("rita")
    user.groups.add(Group.objects.get(name="reviewer"))
    log_in(browser, "rita", next_path="/setup/tokens/")
    wait_for(browser, lambda b: b.find_element(By.ID, "token-form"), what="the tokens page")
    browser.find_element(By.ID, "id_name").send_keys("notebook")
    browser.find_element(By.XPATH, "//button[normalize-space()='Make the token']").click()
    secret = wait_for(browser, lambda b: b.find_element(By.ID, "token-secret"), what="the new token")
    assert secret.get_attribute("value").startswith("afc_")
    page_screenshot(browser, "setup-tokens")

    browser.find_element(By.CSS_SELECTOR, 'tr[data-token="notebook"] button').click()
    wait_for(browser, lambda b: b.find_element(By.CSS_SELECTOR, 'tr[data-token="notebook"] [data-field="status"]'
                                               ).text == "revoked", what="the revoked token")
    assert not browser.find_elements(By.ID, "token-secret")  # shown once
    assert ApiToken.objects.get(name="notebook").revoked_at is not None


# ------------------------------------------------------------------------------------------------ run and export


def test_consolidate_from_the_run_page_and_download_from_files(browser, roles, control, tmp_path):
    run = current_run()
    for pk in make_samples(4, "Exams are stressing me out and I sleep badly this month.", vary=True):
        for number, level in ((1, 1), (2, 1), (3, 2)):
            store_outcome(run, pk, number, "urgency", [f"LEVEL_{level}"])
    make_staff("cora", "workers_app.view_run", "admin_ops.consolidate", "admin_ops.create_archive")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})

    log_in(browser, "cora", next_path="/runs/default/")
    wait_for(browser, lambda b: b.find_element(By.ID, "consolidate-form"), what="the run's page")
    browser.find_element(By.XPATH, "//button[normalize-space()='Consolidate this run']").click()
    job = job_ended(browser, control)
    assert job.get_attribute("data-status") == "done"
    workbook = job.find_element(By.CSS_SELECTOR, "a.button").text.removeprefix("Download ")
    page_screenshot(browser, "job-consolidation")

    browser.find_element(By.LINK_TEXT, "Consolidations & archives").click()
    row = wait_for(browser, lambda b: b.find_element(By.CSS_SELECTOR, 'tr[data-run="default"]'), what="/files/")
    assert workbook in row.text and "cora" in row.text
    page_screenshot(browser, "files")
    row.find_element(By.LINK_TEXT, workbook).click()
    wait_until(lambda: (downloads / workbook).is_file() and not list(downloads.glob("*.crdownload")), timeout=30,
               what="the downloaded workbook")
    time.sleep(0.2)
    book = openpyxl.load_workbook(downloads / workbook, read_only=True)
    assert book.sheetnames[0] == "Run" and "urgency" in book.sheetnames and "Agreement" in book.sheetnames
