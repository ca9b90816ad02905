"""The desk as a new operator met it on `make run` (issue 17's review): what they saw
was wrong or hard to read, each fixed and kept fixed here. The same stack as
tests/e2e/test_desk.py: a real chromium (Playwright) against the API and desk served by
uvicorn, the Temporal dev server, a real worker and PostgreSQL."""

from __future__ import annotations

import re

from playwright.async_api import Browser, Page, expect

from desk.forms import RejectionReason
from domain.case import Role, ScanEvent
from tests.desk_site import DeskSite, signed_in, under_review
from tests.helpers import scan

# An upright tablet a little wider than the narrowest the stylesheet is laid out for.
TABLET_WIDTH = 820


async def queue_count(page: Page) -> int:
    """ "Needs a decision"'s count, once its navigation link and heading agree, and the
    rows shown with them when one page holds the queue (in the whole suite other tests'
    cases fill more than a page)."""
    link = await page.get_by_role("link", name="Needs a decision").inner_text()
    heading = await page.get_by_role("heading", level=1).inner_text()
    in_heading = re.search(r"\((\d+) cases?", heading)
    assert in_heading is not None, heading
    counted = int(re.sub(r"\D", "", link))
    assert int(in_heading.group(1)) == counted, (link, heading)
    if not await page.get_by_role("link", name="Next page").count():
        assert await page.locator("tbody tr:has(a)").count() == counted
    return counted


async def test_r10_a_queue_counts_the_case_a_person_just_decided(
    site: DeskSite, browser: Browser
) -> None:
    """The counts were shared and refreshed behind the readers: the agent who approved a
    case went back to a queue saying "(4 cases)" above 3 rows."""
    case_id = await under_review(site)
    await under_review(site)
    page = await signed_in(browser, site, "ann", Role.AGENT)
    before = await queue_count(page)
    await page.goto(f"{site.url}/desk/cases/{case_id}")
    await page.get_by_role("button", name="Approve").click()
    await expect(page.get_by_role("status")).to_contain_text("Done: approve")
    # Counted anew on the very page the decision leads to...
    await expect(page.get_by_role("link", name="Needs a decision")).to_contain_text(str(before - 1))
    # ...and on the queue the person goes back to: its count, heading and rows agree.
    await page.get_by_role("link", name="Needs a decision").click()
    assert await queue_count(page) == before - 1


async def test_a_queue_fits_an_upright_tablet(site: DeskSite, browser: Browser) -> None:
    """At 820 px the queue's table pushed the page sideways (the top bar stopped short of
    it); now the table scrolls in its own box, reachable by keyboard."""
    await under_review(site)
    page = await signed_in(browser, site, "ann", Role.AGENT)
    await page.set_viewport_size({"width": TABLET_WIDTH, "height": 1100})
    await page.reload()
    await expect(page.locator("tbody tr").first).to_be_visible()
    assert await page.evaluate("document.documentElement.scrollWidth") <= TABLET_WIDTH
    box = page.get_by_role("region", name="Needs a decision: the cases")
    await expect(box).to_have_attribute("tabindex", "0")


async def test_r19_a_rejected_case_names_its_dispute_window_once(
    site: DeskSite, browser: Browser
) -> None:
    """The page read "Waiting for a possible dispute ... until D (R19) until D (in ...)"
    and then "Dispute window (R19) open until D": one deadline said three times."""
    case_id = await under_review(site)
    page = await signed_in(browser, site, "sam", Role.SUPERVISOR)
    await page.goto(f"{site.url}/desk/cases/{case_id}")
    await page.get_by_label("Why (R20: the customer reads this)").fill(
        RejectionReason.NO_DEFECT_SHOWN.value
    )
    await page.get_by_role("button", name="Reject").click()
    await expect(page.get_by_role("status")).to_contain_text("Done: reject")
    waiting = await page.locator(".waiting").inner_text()
    assert "a possible dispute" in waiting
    assert waiting.count("until") == 1, waiting
    await expect(page.locator(".window")).to_contain_text("Dispute window (R19) open until")
    await expect(page.locator(".window .countdown")).to_contain_text("in 6 d")


def _luminance(rgb: str) -> float:
    channels = [int(c) / 255 for c in re.findall(r"\d+", rgb)[:3]]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(one: str, other: str) -> float:
    lighter, darker = sorted((_luminance(one), _luminance(other)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


async def test_focus_is_plain_to_see_on_the_page(site: DeskSite, browser: Browser) -> None:
    """The focus ring was yellow on white (1.6:1; WCAG 2.4.11 asks 3:1), and the note's
    text box had none of its own."""
    case_id = await under_review(site)
    page = await signed_in(browser, site, "ann", Role.AGENT)
    for path, field in (("queues/needs_decision", "Search"), (f"cases/{case_id}", "Add a note")):
        await page.goto(f"{site.url}/desk/{path}")
        await page.get_by_label(field).focus()
        ring = await page.evaluate(
            "() => { const s = getComputedStyle(document.activeElement);"
            " return [s.outlineStyle, s.outlineWidth, s.outlineColor]; }"
        )
        assert ring[:2] == ["solid", "3px"], (field, ring)
        assert contrast(ring[2], "rgb(255, 255, 255)") >= 3, (field, ring)


async def test_r26_a_case_id_typed_wrong_is_a_form_error_not_a_conflict(
    site: DeskSite, browser: Browser
) -> None:
    parcel = scan(ScanEvent.PARCEL_RECEIVED)
    [problem] = await site.gateway.scan_batch([("return-NOSUCH-1-r1", parcel)])
    assert problem is not None  # kept for a person
    page = await signed_in(browser, site, "ann", Role.AGENT)
    await page.get_by_role("link", name="Unmatched scans").click()
    row = page.locator("tr", has_text=parcel.scan_id)
    await row.get_by_label("Case id").fill("order 1003")
    await row.get_by_label("Why", exact=True).fill("label torn")
    async with page.expect_response(lambda r: r.request.method == "POST") as sent:
        await row.get_by_role("button", name="Attach").click()
    answer = await sent.value
    assert answer.status == 422
    await expect(page.get_by_role("alert")).to_contain_text(f"{parcel.scan_id}: case_id")
    still_kept = await site.pool.fetchval(
        "SELECT resolved_at IS NULL FROM unmatched_scans WHERE scan_id = $1", parcel.scan_id
    )
    assert still_kept
