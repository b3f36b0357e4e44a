"""Browser tests of the viewer and the HTML report: one headless Chromium for the session.

Chromium and its driver come from the OS packages (``scripts/install_deps.sh`` installs
them); Selenium drives them with no download. Screenshots are saved as test artefacts under
``tests/artifacts/screenshots/`` (git-ignored), one per page a test looks at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.catalogue.conftest import run_example  # noqa: F401 - the real-model fixture, re-exported

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A headless Chromium (Selenium WebDriver), 1280x900, shared by the session's tests."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip(f"chromium is not installed ({CHROMIUM}, {CHROMEDRIVER}): run scripts/install_deps.sh")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_window_size(1280, 900)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver: Any, name: str, full_page: bool = False) -> Path:
    """Save a PNG of what ``driver`` shows as ``tests/artifacts/screenshots/<name>.png``;
    ``full_page``: the whole page, not only the 1280x900 window."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / (re.sub(r"[^A-Za-z0-9_.-]+", "_", name) + ".png")
    size = driver.get_window_size()
    if full_page:
        height = int(driver.execute_script("return document.documentElement.scrollHeight"))
        driver.set_window_size(size["width"], min(max(height, size["height"]), 16000))
    try:
        if not driver.save_screenshot(str(path)):
            raise AssertionError(f"could not save screenshot {path}")
    finally:
        if full_page:
            driver.set_window_size(size["width"], size["height"])
    return path
