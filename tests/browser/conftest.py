"""A real headless Chromium (Debian's chromium + chromium-driver) driven by Selenium against pytest-django's live
server. Screenshots go to BROWSER_OUTPUT (default: test-output/browser in the repository, not committed)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = Path(os.environ.get("BROWSER_OUTPUT", ROOT / "test-output" / "browser"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
PASSWORD = "pw-for-browser-tests"


def _missing_browser() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (Path(path).exists() or shutil.which(path)):
            return f"{path} is missing: install Debian's chromium and chromium-driver (./test.sh does it as root)"
    return None


@pytest.fixture(scope="session")
def chrome():
    problem = _missing_browser()
    if problem:
        pytest.fail(problem)  # never a silent skip: the browser tests are part of the suite
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900",
                     "--disable-gpu"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console: CSP violations show there
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


@pytest.fixture
def browser(chrome, live_server):
    """The shared browser, logged out, with ``browser.base`` set to the live server's URL."""
    chrome.get("about:blank")  # the last test's page must not poll (or set cookies) into this one
    chrome.delete_all_cookies()
    chrome.base = live_server.url
    yield chrome
    chrome.get("about:blank")
    chrome.delete_all_cookies()


def log_in(browser, username: str, *, next_path: str = "/dashboard/") -> None:
    """Log in through the admin's login form, as staff do, and land on ``next_path``."""
    from selenium.webdriver.common.by import By

    browser.get(f"{browser.base}/admin/login/?next={next_path}")
    browser.find_element(By.NAME, "username").send_keys(username)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit], button[type=submit]").click()


def make_staff(username: str, *permissions: str, superuser: bool = False):
    """A staff account with exactly ``permissions`` (``app_label.codename``), password PASSWORD."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    model = get_user_model()
    if superuser:
        return model.objects.create_superuser(username, password=PASSWORD)
    user = model.objects.create_user(username, password=PASSWORD, is_staff=True)
    for dotted in permissions:
        app_label, codename = dotted.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return user


def screenshot(browser, name: str) -> Path:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / f"{name}.png"
    browser.save_screenshot(str(path))
    return path


def wait_for(browser, condition, timeout: float = 15.0, what: str = "the page"):
    """Selenium's explicit wait with a readable failure.

    A page that reloads itself (the dashboard after a run switch) can replace an element between finding it and
    reading it; that poll counts as "not yet", not as a failure.
    """
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(
        browser, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)
    ).until(condition, message=f"waiting for {what}")
