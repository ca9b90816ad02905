"""R24's pictures: the plots (PNG, SVG) and the HTML report page, the page seen by a real
browser (tests/browser.py). The screenshot goes to a temporary folder unless
AFTERSALES_SCREENSHOT_DIR says where (docs/ for the README)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from matplotlib.figure import Figure
from playwright.async_api import Browser, ViewportSize, expect
from temporalio.testing import WorkflowEnvironment

from activities.analytics import AnalyticsActivities
from activities.notifications import RecordingNotifier
from activities.policy_file import load_policy_file
from api.app import create_app
from api.report_page import Plot
from domain.case import Role
from infra.gateway import CaseGateway
from infra.settings import DEFAULT_POLICY_FILE
from tests.browser import screenshot_path
from tests.helpers import as_role
from tests.identities import IDENTITIES
from tests.integration.test_analytics_data_in import analytics_api
from tests.integration.test_analytics_reports import delivered
from tests.integration.test_batch_alarm import a_sku_with_a_bad_batch
from tests.processes import free_port

SCREENSHOT = "report-page.png"


@pytest.fixture
async def flagged_sku(pool: asyncpg.Pool) -> str:
    sku = await a_sku_with_a_bad_batch(pool)
    await answered_surveys(pool, sku)
    await AnalyticsActivities(pool, RecordingNotifier(), DEFAULT_POLICY_FILE).run_batch_alarm()
    return sku


async def answered_surveys(pool: asyncpg.Pool, sku: str) -> None:
    """A survey answered for each of the SKU's cases, a week apart, better each week."""
    levels = ["very_dissatisfied", "dissatisfied", "satisfied", "very_satisfied"]
    case_ids = await pool.fetch("SELECT case_id FROM cases WHERE sku = $1 ORDER BY batch", sku)
    for weeks_ago, row in enumerate(case_ids):
        level = levels[max(0, len(levels) - 1 - weeks_ago)]
        answered = datetime.now(UTC) - timedelta(weeks=weeks_ago)
        await pool.execute(
            """INSERT INTO surveys (case_id, sent_at, answered_at, attitude, expertise,
                                    timeliness, promise_kept)
               VALUES ($1, $2, $2, $3, $3, $3, $3)""",
            row["case_id"], answered, level,
        )  # fmt: skip


@pytest.fixture
async def api(dev_env: WorkflowEnvironment, pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    async with analytics_api(dev_env, pool) as client:
        yield client


@pytest.mark.parametrize(
    ("image_format", "media_type", "starts"),
    [("png", "image/png", b"\x89PNG"), ("svg", "image/svg+xml", b"<?xml")],
)
async def test_r24_each_plot_renders_as_png_and_svg(
    api: httpx.AsyncClient, flagged_sku: str, image_format: str, media_type: str, starts: bytes
) -> None:
    for plot in ("return_rate_by_batch", "sla_compliance", "reasons", "satisfaction_trend"):
        answer = await api.get(f"/reports/plots/{plot}.{image_format}",
                               params={"sku": flagged_sku}, headers=as_role("agent"))  # fmt: skip
        assert answer.status_code == 200
        assert answer.headers["content-type"] == media_type
        assert answer.content.startswith(starts)
        assert len(answer.content) > 5_000
    svg = await api.get("/reports/plots/return_rate_by_batch.svg", params={"sku": flagged_sku},
                        headers=as_role("agent"))  # fmt: skip
    assert f"{flagged_sku}/BAD".encode() in svg.content  # the flagged batch is on the plot
    trend = await api.get("/reports/plots/satisfaction_trend.svg", params={"sku": flagged_sku},
                          headers=as_role("agent"))  # fmt: skip
    assert b"promise_kept" in trend.content  # a line per dimension, named in the legend
    assert b"nothing to show" not in trend.content
    unknown = await api.get("/reports/plots/pie.png", headers=as_role("agent"))
    assert unknown.status_code == 422
    assert (await api.get("/reports/page", headers=as_role("service"))).status_code == 403


async def test_r24_a_staff_session_cookie_opens_the_report_page_and_nothing_else(
    api: httpx.AsyncClient, flagged_sku: str
) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    token = IDENTITIES.token("quality-lead", Role.SUPERVISOR)
    kept = await api.post("/codec/session", content=f"token={token}", headers=form)
    assert kept.status_code == 200
    assert "Path=/" in kept.headers["set-cookie"]
    # The client now sends the cookie and no Authorization header.
    page = await api.get("/reports/page", params={"sku": flagged_sku})
    plot = await api.get("/reports/plots/reasons.svg", params={"sku": flagged_sku})
    # Only those read-only pages: the API's data and every write still need the header.
    report = await api.get("/reports", params={"sku": flagged_sku})
    cases = await api.get("/cases")
    write = await api.post("/deliveries", json={"rows": []})
    assert page.status_code == 200
    assert "Flagged batches" in page.text
    assert plot.status_code == 200
    assert (report.status_code, cases.status_code, write.status_code) == (401, 401, 401)
    api.cookies.clear()
    assert (await api.get("/reports/page")).status_code == 401


async def test_r24_the_report_page_shows_the_flagged_batch_and_its_plots_in_a_browser(
    dev_env: WorkflowEnvironment,
    pool: asyncpg.Pool,
    flagged_sku: str,
    browser: Browser,
    tmp_path: Path,
) -> None:
    port = free_port()
    gateway = CaseGateway(dev_env.client, pool, "no-worker", load_policy_file(DEFAULT_POLICY_FILE))
    app = create_app(gateway, IDENTITIES.authenticator)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    try:
        page = await browser.new_page(viewport=ViewportSize(width=1400, height=1800))
        # What an operator does (README): keep a staff token at /codec/session once; the
        # browser then opens the page with that session cookie, no header.
        await page.goto(f"http://127.0.0.1:{port}/codec/session")
        await page.locator("input[name=token]").fill(
            IDENTITIES.token("quality-lead", Role.SUPERVISOR)
        )
        await page.get_by_role("button").click()
        await expect(page.get_by_text("Kept.")).to_be_visible()
        await page.goto(f"http://127.0.0.1:{port}/reports/page?sku={flagged_sku}")
        await expect(page.get_by_text("Flagged batches: 1")).to_be_visible()
        text = await page.inner_text("body")
        # Every plot drawn, none broken.
        loaded = await page.evaluate(
            "Array.from(document.images).filter(i => i.complete && i.naturalWidth > 300).length"
        )
        # The trend drawn and on screen: loaded, and laid out with a size.
        trend = page.locator("img[alt=satisfaction_trend]")
        await expect(trend).to_be_visible()
        trend_box = await trend.bounding_box()
        flagged_rows = await page.locator("tr.flagged").all_inner_texts()
        screenshot = screenshot_path(SCREENSHOT, tmp_path)
        await page.screenshot(path=screenshot)
    finally:
        server.should_exit = True
        await serving
    assert loaded == 4
    assert trend_box is not None
    assert trend_box["width"] > 300
    assert trend_box["height"] > 150
    assert "Satisfaction per week (R25)" in text
    assert any(f"{flagged_sku}\tBAD" in row for row in flagged_rows)
    assert not any("TINY" in row for row in flagged_rows)  # below min_units: not flagged
    assert screenshot.stat().st_size > 20_000


async def test_r24_a_burst_of_page_views_draws_each_report_once(
    api: httpx.AsyncClient, flagged_sku: str, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 16: 200 page views at once took 55 s, each drawing the four plots afresh. A
    burst of 50 now draws them once; a change to the data draws them once more."""
    saved: list[str] = []
    savefig = Figure.savefig

    def counted(figure: Figure, *args: Any, **kwargs: Any) -> None:
        saved.append(kwargs.get("format", "?"))  # list.append: safe from the thread pool
        savefig(figure, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", counted)
    staff, params = as_role("agent"), {"sku": flagged_sku}

    async def burst() -> list[httpx.Response]:
        return await asyncio.gather(
            *(api.get("/reports/page", params=params, headers=staff) for _ in range(50))
        )

    first = await burst()
    assert {r.status_code for r in first} == {200}
    assert len({r.text for r in first}) == 1
    assert len(saved) == len(Plot)
    # New data (a delivery for the SKU): a new report, drawn once more, then found again.
    await delivered(pool, flagged_sku, "LATE", 500)
    second = await burst()
    assert len({r.text for r in second}) == 1
    assert second[0].text != first[0].text
    assert len(saved) == 2 * len(Plot)
