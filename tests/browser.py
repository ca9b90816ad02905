"""A real browser for the tests: Playwright driving Debian's chromium (`make browser`
installs it; Playwright never downloads one here). A pytest plugin (tests/conftest.py
loads it): a test asks for `browser` and opens its own pages.

Screenshots a test takes for the docs go to a temporary folder unless
AFTERSALES_SCREENSHOT_DIR says where (`AFTERSALES_SCREENSHOT_DIR=docs` refreshes docs/):
a test run leaves the work tree as it found it."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, ViewportSize, async_playwright

CHROMIUM = "/usr/bin/chromium"
# No first-run work, no calls home: the machines have no network beyond loopback.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# A laptop's screen: what docs/ shows.
VIEWPORT = ViewportSize(width=1440, height=900)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    assert shutil.which(CHROMIUM), f"{CHROMIUM} is missing: `make browser` installs it"
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()


def screenshot_path(name: str, tmp_path: Path) -> Path:
    """Where a test writes the screenshot `name` (see the module's docstring)."""
    return Path(os.environ.get("AFTERSALES_SCREENSHOT_DIR", tmp_path)) / name
