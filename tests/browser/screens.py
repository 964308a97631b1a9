"""Pages at the size the issue asks for (1366 x 768 CSS pixels), and their screenshots for the README in
docs/screenshots/ (committed: each run of the browser tests draws them again)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

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
    """The visible 1366 x 768 of the page, as docs/screenshots/<name>.png."""
    DOCS.mkdir(parents=True, exist_ok=True)
    path = DOCS / f"{name}.png"
    browser.save_screenshot(str(path))
    return path
