"""The operators' desk end to end: a real chromium (Playwright) against the API and desk
served by uvicorn, the Temporal dev server, a real worker and PostgreSQL. Screenshots go
to a temporary folder unless AFTERSALES_SCREENSHOT_DIR says where (docs/ for the README
and docs/desk.md)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from playwright.async_api import Browser, Page, expect
from temporalio.testing import WorkflowEnvironment

from domain.case import Role, ScanEvent
from tests.desk_site import (
    TEMPORAL_UI,
    DeskSite,
    chromium,
    desk_site,
    fresh_request,
    opened,
    reaches,
    signed_in,
    under_review,
)
from tests.helpers import scan, shipped


@pytest.fixture
async def site(
    dev_env: WorkflowEnvironment, pool: asyncpg.Pool, task_queue: str, running_worker: Any
) -> AsyncIterator[DeskSite]:
    async with running_worker(dev_env.client), desk_site(dev_env, pool, task_queue) as served:
        yield served


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


def screenshot_path(tmp_path: Path, name: str) -> Path:
    return Path(os.environ.get("AFTERSALES_SCREENSHOT_DIR", tmp_path)) / name


async def find_in_queue(page: Page, site: DeskSite, queue: str, search: str) -> None:
    await page.goto(f"{site.url}/desk/queues/{queue}")
    await page.get_by_label("Search").fill(search)
    await page.get_by_role("button", name="Apply").click()


async def test_r10_an_agent_finds_a_case_needing_a_decision_approves_it_and_it_leaves_the_queue(
    site: DeskSite, browser: Browser, tmp_path: Path
) -> None:
    case_id = await under_review(site)
    others = [await under_review(site) for _ in range(2)]
    page = await signed_in(browser, site, "ann", Role.AGENT)
    # Signed in, the desk opens on "needs a decision", its count in the navigation.
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Needs a decision")
    await expect(page.get_by_role("link", name="Needs a decision")).to_contain_text(
        str(len(others) + 1)
    )
    await expect(page.get_by_role("link", name=case_id)).to_be_visible()
    await page.screenshot(path=screenshot_path(tmp_path, "desk-queue.png"), full_page=True)
    order = case_id.split("-")[1] + "-" + case_id.split("-")[2]
    await find_in_queue(page, site, "needs_decision", order)
    await expect(page.locator("tbody tr")).to_have_count(1)
    await page.get_by_role("link", name=case_id).click()
    await expect(page.locator(".waiting")).to_contain_text("an agent's review decision (R10)")
    # A live countdown (desk.js) to the review deadline.
    await expect(page.locator(".waiting .countdown")).to_contain_text("in ")
    await expect(page.get_by_role("link", name="Open the run in the Temporal UI")).to_have_attribute(
        "href", f"{TEMPORAL_UI}/namespaces/default/workflows/{case_id}"
    )
    await expect(page.locator("#money-h + dl")).to_contain_text("50.00 EUR as agent")
    await page.screenshot(path=screenshot_path(tmp_path, "desk-case.png"), full_page=True)
    await page.get_by_role("button", name="Approve").click()
    await expect(page.get_by_role("status")).to_contain_text("Done: approve")
    await expect(page.locator(".badge")).to_have_text("awaiting ship back")
    # Recorded under the signed-in person and role (R23).
    await expect(page.locator(".timeline")).to_contain_text("ann")
    decided = await site.pool.fetchrow(
        "SELECT actor, role FROM case_events WHERE case_id = $1 AND action = 'approved'", case_id
    )
    assert decided is not None
    assert (decided["actor"], decided["role"]) == ("ann", "agent")
    await find_in_queue(page, site, "needs_decision", order)
    await expect(page.get_by_text("Nothing here.")).to_be_visible()
