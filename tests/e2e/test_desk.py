"""The operators' desk end to end: a real chromium (Playwright) against the API and desk
served by uvicorn, the Temporal dev server, a real worker and PostgreSQL. Screenshots go
to a temporary folder unless AFTERSALES_SCREENSHOT_DIR says where (tests/browser.py;
docs/ for the README and docs/desk.md)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from playwright.async_api import Browser, Page, expect

from desk.forms import RejectionReason
from domain.case import Dispute, Role, RootCause, ScanEvent
from domain.queues import PAGE_SIZE
from tests.browser import screenshot_path
from tests.desk_site import (
    DESK_VIEWPORT,
    TEMPORAL_UI,
    DeskSite,
    fresh_request,
    opened,
    reaches,
    signed_in,
    under_review,
)
from tests.helpers import scan, shipped
from workflows.case_handlers import CaseHandlers


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
    # Its count is what the queue holds: other tests' cases share the database, and in the
    # whole suite they fill more than a page (tests/integration/test_case_queues.py records
    # hundreds).
    shown = await page.locator("tbody tr").count()
    assert shown >= len(others) + 1
    counted = int(
        re.sub(r"\D", "", await page.get_by_role("link", name="Needs a decision").inner_text())
    )
    await expect(page.get_by_role("heading", level=1)).to_contain_text(f"({counted} cases")
    if await page.get_by_role("link", name="Next page").count():
        assert (shown, counted > PAGE_SIZE) == (PAGE_SIZE, True)
    else:
        assert counted == shown
        await expect(page.get_by_role("link", name=case_id)).to_be_visible()
    await page.screenshot(path=screenshot_path("desk-queue.png", tmp_path), full_page=True)
    order = case_id.split("-")[1] + "-" + case_id.split("-")[2]
    await find_in_queue(page, site, "needs_decision", order)
    await expect(page.locator("tbody tr")).to_have_count(1)
    await page.get_by_role("link", name=case_id).click()
    await expect(page.locator(".waiting")).to_contain_text("an agent's review decision (R10)")
    # A live countdown (desk.js) to the review deadline.
    await expect(page.locator(".waiting .countdown")).to_contain_text("in ")
    await expect(
        page.get_by_role("link", name="Open the run in the Temporal UI")
    ).to_have_attribute("href", f"{TEMPORAL_UI}/namespaces/default/workflows/{case_id}")
    await expect(page.locator("#money-h + dl")).to_contain_text("50.00 EUR as agent")
    await page.screenshot(path=screenshot_path("desk-case.png", tmp_path), full_page=True)
    # On a tablet held upright the page fits its width: nothing scrolls sideways.
    await page.set_viewport_size({"width": 768, "height": 1024})
    assert await page.evaluate("document.documentElement.scrollWidth") <= 768
    await page.screenshot(path=tmp_path / "desk-case-tablet.png", full_page=True)
    await page.set_viewport_size({"width": 1280, "height": 900})
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


async def test_r17_an_agents_offer_above_the_limit_is_refused_in_place_and_a_supervisor_pays_it(
    site: DeskSite, browser: Browser, tmp_path: Path
) -> None:
    case_id = await under_review(site, paid_minor=19_990)
    agent = await signed_in(browser, site, "ann", Role.AGENT)
    await agent.goto(f"{site.url}/desk/cases/{case_id}")
    await agent.get_by_text("Compensation (R17)").click()
    await agent.get_by_label("Amount (EUR)").fill("90.00")
    # The preview says what it would do before anything is sent.
    await expect(agent.locator("#preview")).to_contain_text("Above your authority of 50.00 EUR")
    await agent.locator("#compensate-reason").fill("the zip broke twice; goodwill")
    await agent.get_by_role("button", name="Pay compensation").click()
    refusal = agent.locator("#refusal-compensate")
    await expect(refusal).to_contain_text("R17")
    await expect(refusal).to_contain_text("90.00 EUR is above the agent limit of 50.00 EUR")
    await expect(agent.get_by_label("Amount (EUR)")).to_have_value("90.00")  # kept as typed
    await agent.screenshot(path=screenshot_path("desk-refusal.png", tmp_path), full_page=True)
    # R18: the refused offer sent the case to a supervisor.
    await expect(agent.locator(".summary")).to_contain_text("Escalation: supervisor")
    assert (
        await site.pool.fetchval("SELECT count(*) FROM money_movements WHERE case_id = $1", case_id)
        == 0
    )

    supervisor = await signed_in(browser, site, "sam", Role.SUPERVISOR)
    await find_in_queue(supervisor, site, "escalated", case_id)
    await supervisor.get_by_role("link", name=case_id).click()
    await expect(supervisor.locator("#money-h + dl")).to_contain_text("up to what remains")
    await supervisor.get_by_text("Compensation (R17)").click()
    await supervisor.get_by_label("Amount (EUR)").fill("90")
    await expect(supervisor.locator("#preview")).to_contain_text(
        "Pays 90.00 EUR now; 109.90 EUR remains refundable"
    )
    await supervisor.locator("#compensate-reason").fill("the zip broke twice; goodwill")
    await supervisor.get_by_role("button", name="Pay compensation").click()
    await expect(supervisor.get_by_role("status")).to_contain_text("Done: compensate")
    await expect(supervisor.locator("#remaining")).to_have_text("109.90 EUR")
    paid = await site.pool.fetchrow(
        "SELECT actor, role FROM case_events WHERE case_id = $1 AND action = 'compensation_paid'",
        case_id,
    )
    assert paid is not None
    assert (paid["actor"], paid["role"]) == ("sam", "supervisor")


async def test_r26_an_unmatched_scan_attached_to_its_case_moves_the_case_on(
    site: DeskSite, browser: Browser
) -> None:
    case_id = await opened(site, fresh_request())  # a change of mind: no review (R5)
    await reaches(site.pool, case_id, "awaiting_ship_back")
    await site.gateway.shipped_back(case_id, shipped())
    await reaches(site.pool, case_id, "in_return_transit")
    misread = f"{case_id}X"
    parcel = scan(ScanEvent.PARCEL_RECEIVED)
    [problem] = await site.gateway.scan_batch([(misread, parcel)])
    assert problem is not None  # kept for a person

    page = await signed_in(browser, site, "ann", Role.AGENT)
    await page.get_by_role("link", name="Unmatched scans").click()
    row = page.locator("tr", has_text=parcel.scan_id)
    await expect(row).to_contain_text(misread)
    await row.get_by_label("Case id").fill(case_id)
    await row.get_by_label("Why", exact=True).fill("label misread at the dock; order matches")
    await row.get_by_role("button", name="Attach").click()
    await expect(page.get_by_role("status")).to_contain_text(f"attached to {case_id}")
    await expect(page.locator("tr", has_text=parcel.scan_id)).to_have_count(0)
    await reaches(site.pool, case_id, "awaiting_inspection")
    resolved = await site.pool.fetchrow(
        "SELECT resolved_by, resolution_reason FROM unmatched_scans WHERE scan_id = $1",
        parcel.scan_id,
    )
    assert resolved is not None
    assert resolved["resolved_by"] == "ann"


async def test_a_signed_out_browser_is_sent_to_sign_in_and_back(
    site: DeskSite, browser: Browser
) -> None:
    page = await (await browser.new_context(viewport=DESK_VIEWPORT)).new_page()
    for path in ("/desk/queues/late", "/reports/page", "/desk/cases/return-X-1-r1"):
        await page.goto(site.url + path)
        await expect(page.get_by_role("heading", name="Sign in to the desk")).to_be_visible()
    # Signed in from there, the browser is back on the page it asked for.
    await page.goto(f"{site.url}/desk/queues/late")
    await page.get_by_label("Person (staff id)").fill("quality-lead")
    await page.get_by_label("Role").select_option(Role.SUPERVISOR.value)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Late")
    await page.goto(f"{site.url}/reports/page")
    await expect(page.get_by_text("Flagged batches")).to_be_visible()
    # Signed out, the same cookie opens nothing any more (the session ended server-side).
    cookies = await page.context.cookies()
    await page.goto(f"{site.url}/desk/queues/late")
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in to the desk")).to_be_visible()
    await page.context.add_cookies(cookies)  # type: ignore[arg-type]
    await page.goto(f"{site.url}/desk/queues/late")
    await expect(page.get_by_role("heading", name="Sign in to the desk")).to_be_visible()


async def test_r10_a_double_submitted_form_decides_once(site: DeskSite, browser: Browser) -> None:
    case_id = await under_review(site)
    page = await signed_in(browser, site, "ann", Role.AGENT)
    await page.goto(f"{site.url}/desk/cases/{case_id}")
    # The same form sent twice at once, as a double click without the script would.
    answers = await page.evaluate(
        """async () => {
            const form = document.getElementById("form-approve");
            const send = () => fetch(form.action, {method: "POST", body: new FormData(form)});
            const answers = await Promise.all([send(), send()]);
            answers.push(await send());  // and once more after both were answered
            return answers.map(a => a.status);
        }"""
    )
    assert answers == [200, 200, 200]  # each followed its redirect to the case page
    approvals = await site.pool.fetchval(
        "SELECT count(*) FROM case_events WHERE case_id = $1 AND action = 'approved'", case_id
    )
    assert approvals == 1
    await page.reload()
    await expect(page.locator(".badge")).to_have_text("awaiting ship back")


async def test_a_supervisor_assigns_cases_in_bulk_and_exports_the_queue_as_shown(
    site: DeskSite, browser: Browser
) -> None:
    cases = [await under_review(site, sku="SKU-BULK") for _ in range(2)]
    supervisor = await signed_in(browser, site, "sam", Role.SUPERVISOR)
    await supervisor.goto(f"{site.url}/desk/queues/unassigned?sku=SKU-BULK")
    await expect(supervisor.locator("tbody tr")).to_have_count(2)
    # The CSV is the page shown: the same filter, the same rows.
    export = supervisor.get_by_role("link", name="Export CSV (this page)")
    href = await export.get_attribute("href")
    assert href == "/desk/queues/unassigned.csv?sku=SKU-BULK"
    answer = await supervisor.context.request.get(site.url + href)
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    exported = (await answer.text()).splitlines()
    assert exported[0].startswith("case_id,status,kind,reason")
    assert sorted(line.split(",")[0] for line in exported[1:]) == sorted(cases)
    await supervisor.get_by_label("Select every case shown").check()
    await supervisor.get_by_label("Assign the selected cases to").fill("ann")
    await supervisor.get_by_role("button", name="Assign", exact=True).click()
    await expect(supervisor.get_by_role("status")).to_contain_text("assigned 2 of 2 to ann")
    await expect(supervisor.get_by_text("Nothing here.")).to_be_visible()

    agent = await signed_in(browser, site, "ann", Role.AGENT)
    await agent.goto(f"{site.url}/desk/queues/assigned_to_me?sku=SKU-BULK")
    await expect(agent.locator("tbody tr")).to_have_count(2)
    assigned = await site.pool.fetch(
        "SELECT actor FROM case_events WHERE case_id = ANY($1) AND action = 'assigned'", cases
    )
    assert [row["actor"] for row in assigned] == ["sam", "sam"]


async def test_a_refused_input_is_marked_handled_with_who_and_why(
    site: DeskSite, browser: Browser
) -> None:
    marker = f"sku: not a string ({uuid.uuid4().hex[:8]})"
    await site.gateway.record_refused_input(
        source="api", operation="POST /cases", payload='{"sku": 7}', errors=marker
    )
    input_id = await site.pool.fetchval("SELECT max(id) FROM refused_inputs")
    page = await signed_in(browser, site, "sam", Role.SUPERVISOR)
    await page.get_by_role("link", name="Refused input").click()
    # Oldest first: after the rest of the suite this one may be pages away.
    row = page.locator("tr", has_text=marker)
    while not await row.count():
        await page.get_by_role("link", name="Next page").click()
    await row.get_by_label("What was done").fill("the shop fixed its SKU field")
    await row.get_by_role("button", name="Mark handled").click()
    await expect(page.get_by_role("status")).to_contain_text(f"refused input {input_id} handled")
    handled = await site.pool.fetchrow(
        "SELECT handled_by, handled_reason FROM refused_inputs WHERE id = $1", input_id
    )
    assert handled is not None
    assert (handled["handled_by"], handled["handled_reason"]) == (
        "sam",
        "the shop fixed its SKU field",
    )


async def test_r19_an_agent_rejects_with_a_listed_reason_and_the_arbiter_rules_on_the_dispute(
    site: DeskSite, browser: Browser
) -> None:
    case_id = await under_review(site, paid_minor=4_990)
    agent = await signed_in(browser, site, "ann", Role.AGENT)
    await agent.goto(f"{site.url}/desk/cases/{case_id}")
    await agent.get_by_label("Why (R20: the customer reads this)").fill(
        RejectionReason.NO_DEFECT_SHOWN.value
    )
    await agent.get_by_label("Root cause", exact=True).select_option(RootCause.HANDLING.value)
    await agent.get_by_role("button", name="Reject").click()
    await expect(agent.get_by_role("status")).to_contain_text("Done: reject")
    await agent.get_by_label("Add a note").fill("customer called twice; photos were blurry")
    await agent.get_by_role("button", name="Add note").click()
    await expect(agent.locator(".note-item")).to_contain_text("ann (agent)")
    await expect(agent.locator(".note-item")).to_contain_text("photos were blurry")
    await site.gateway.tell(
        case_id,
        CaseHandlers.dispute,
        Dispute(event_id="dispute-1", reason="the crack was there on arrival"),
    )
    await reaches(site.pool, case_id, "in_arbitration")

    arbiter = await signed_in(browser, site, "judge", Role.ARBITER)
    await find_in_queue(arbiter, site, "needs_decision", case_id)
    await arbiter.get_by_role("link", name=case_id).click()
    await expect(arbiter.locator(".window")).to_contain_text("the crack was there on arrival")
    await expect(arbiter.locator("form.action")).to_have_count(1)  # ruling is all they do
    # The merchant's internal notes are not the platform's arbiter's to read.
    await expect(arbiter.get_by_text("photos were blurry")).to_have_count(0)
    await arbiter.get_by_role("radio", name="the customer").check()
    await arbiter.get_by_label("Why", exact=True).fill("the photos show a crack at delivery")
    await arbiter.get_by_role("button", name="Rule").click()
    await expect(arbiter.get_by_role("status")).to_contain_text("Done: rule")
    await reaches(site.pool, case_id, "refunded")
    ruled = await site.pool.fetchrow(
        "SELECT actor, role FROM case_events WHERE case_id = $1 AND role = 'arbiter'", case_id
    )
    assert ruled is not None
    assert ruled["actor"] == "judge"
