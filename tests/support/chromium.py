"""Headless Chromium for tests: Debian's build, driven by Playwright.

Screenshots are kept under test-artifacts/ for people to look at. Set
SYNDICATE_SKIP_BROWSER=1 to skip the browser tests on a machine without Chromium.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"
# Every picture is this gradient, so screenshots look like the real thing without a network.
PICTURE = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="1200" height="675">'
    '<defs><linearGradient id="g" x2="1" y2="1"><stop offset="0" stop-color="#8aa4b8"/>'
    '<stop offset="1" stop-color="#3f5a6e"/></linearGradient></defs>'
    '<rect width="1200" height="675" fill="url(#g)"/></svg>'
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium, or a clear failure when it is missing."""
    if os.environ.get("SYNDICATE_SKIP_BROWSER") == "1":
        pytest.skip("SYNDICATE_SKIP_BROWSER=1 is set")
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()
