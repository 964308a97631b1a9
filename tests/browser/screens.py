"""Pages at the size the issue asks for (1366 x 768 CSS pixels), and their screenshots: into test-output/browser/
always, and into docs/screenshots/ (the README's pictures) with DOCS_SCREENSHOTS=1, so that an ordinary run leaves
the committed pictures alone."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from tests.browser.conftest import screenshot

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
WIDTH, HEIGHT = 1366, 768


@contextmanager
def laptop_screen(browser):
    """The viewport exactly WIDTH x HEIGHT (a window size would include the browser's own frame)."""
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False})
    try:
        yield
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def doc_screenshot(browser, name: str) -> Path:
    """What the screen shows now, as <name>.png."""
    path = screenshot(browser, name)
    if os.environ.get("DOCS_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS / path.name)
    return path


def page_screenshot(browser, name: str) -> Path:
    """The page at WIDTH x HEIGHT, as the README shows it."""
    with laptop_screen(browser):
        return doc_screenshot(browser, name)


def grid_geometry(browser) -> dict:
    """Where the dashboard's worker cells end, the viewport, and whether the page scrolls sideways."""
    return browser.execute_script("""
        const cells = Array.from(document.querySelectorAll('[data-worker]'));
        const boxes = cells.map(function (cell) { return cell.getBoundingClientRect(); });
        return {cells: cells.length, bottom: Math.max(...boxes.map(function (b) { return b.bottom; })),
                right: Math.max(...boxes.map(function (b) { return b.right; })),
                viewport: [window.innerWidth, window.innerHeight],
                scrollWidth: document.documentElement.scrollWidth, clientWidth: document.documentElement.clientWidth};
    """)
