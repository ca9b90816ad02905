"""A payment the provider declined, resolved from the desk (R21): the sandbox payment
provider declines an order's payments, the case waits in `payment_declined` in "needs a
decision", and a person retries it or records it settled another way on the case page.
The same stack as tests/e2e/test_desk.py: a real chromium (Playwright) against the API
and desk served by uvicorn, the Temporal dev server, a real worker and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, Page, expect

from activities.payments import SandboxPaymentProvider
from domain.case import Role
from tests.browser import screenshot_path
from tests.desk_site import DeskSite, signed_in, signed_in_client, under_review
from tests.e2e.test_desk import find_in_queue

COMPENSATION = "20.00"
RETRY = "try it again under its key"
SETTLED = "record it settled another way"


async def declined_compensation(
    site: DeskSite, browser: Browser, payments: SandboxPaymentProvider, person: str, role: Role
) -> tuple[str, Page]:
    """A case under review whose goodwill refund the provider declined, offered from the
    desk by `person`, and their page on it."""
    case_id = await under_review(site)
    payments.declined_orders.add((await site.gateway.status(case_id)).order_id)
    page = await signed_in(browser, site, person, role)
    await page.goto(f"{site.url}/desk/cases/{case_id}")
    await page.get_by_text("Compensation (R17)").click()
    await page.get_by_label("Amount (EUR)").fill(COMPENSATION)
    await page.locator("#compensate-reason").fill("the zip broke twice; goodwill")
    await page.get_by_role("button", name="Pay compensation").click()
    return case_id, page


async def resolve(page: Page, choice: str, reason: str, reference: str = "") -> None:
    await page.get_by_label(choice).check()
    await page.locator("#resolve_payment-reference").fill(reference)
    await page.locator("#resolve_payment-reason").fill(reason)
    await page.get_by_role("button", name="Resolve the payment").click()


async def test_r21_a_declined_compensation_is_retried_from_the_desk_and_the_case_moves_back(
    site: DeskSite, browser: Browser, payments: SandboxPaymentProvider, tmp_path: Path
) -> None:
    case_id, page = await declined_compensation(site, browser, payments, "ann", Role.AGENT)
    # The honest answer: no money moved, and no "Done" says otherwise.
    await expect(page.locator("#declined-after")).to_contain_text(
        "the payment provider declined the payment (R21)"
    )
    await expect(page.locator(".done")).to_have_count(0)
    await expect(page.locator(".badge")).to_have_text("payment declined")
    declined = page.locator("#declined-payment")
    await expect(declined).to_contain_text(f"refund of {COMPENSATION} EUR")
    await expect(declined).to_contain_text("the card was declined (sandbox: a declined order)")
    await expect(declined).to_contain_text("under review")
    await page.screenshot(path=screenshot_path("desk-declined-payment.png", tmp_path),
                          full_page=True)  # fmt: skip
    # No other money moves while it waits (the case would refuse it): no offer is drawn.
    await expect(page.get_by_text("Compensation (R17)")).to_have_count(0)
    # It waits for a person's decision, in the queue of that name.
    await find_in_queue(page, site, "needs_decision", case_id)
    await expect(page.locator("tbody tr")).to_contain_text("payment declined")
    await page.get_by_role("link", name=case_id).click()

    # Retried while the provider still declines: declined again, said so in place.
    await resolve(page, RETRY, "customer says the card works again")
    await expect(page.locator("#declined-after")).to_contain_text("declined the payment")
    await expect(page.locator(".badge")).to_have_text("payment declined")

    payments.declined_orders.clear()
    await resolve(page, RETRY, "customer renewed the card")
    await expect(page.get_by_role("status")).to_contain_text("Done: resolve payment")
    await expect(page.locator(".badge")).to_have_text("under review")  # where it was
    await expect(page.locator("#declined-payment")).to_have_count(0)
    await expect(page.get_by_role("button", name="Approve")).to_be_visible()
    assert [str(amount) for amount in payments.refunds.values()] == [f"{COMPENSATION} EUR"]
    retried = await site.pool.fetch(
        "SELECT actor, role FROM case_events WHERE case_id = $1 AND action = 'payment_retried'"
        " ORDER BY seq",
        case_id,
    )
    assert [(row["actor"], row["role"]) for row in retried] == [("ann", "agent")] * 2


async def test_r21_settled_elsewhere_needs_its_reference_and_a_stale_form_is_refused_in_place(
    site: DeskSite, browser: Browser, payments: SandboxPaymentProvider
) -> None:
    case_id, page = await declined_compensation(site, browser, payments, "sam", Role.SUPERVISOR)
    await expect(page.locator(".badge")).to_have_text("payment declined")
    # The same case open in a second tab, before anyone resolves it.
    stale = await page.context.new_page()
    await stale.goto(page.url)

    async with page.expect_response(lambda r: r.request.method == "POST") as sent:
        await resolve(page, SETTLED, "paid by bank transfer")
    assert (await sent.value).status == 422
    refusal = page.locator("#refusal-resolve_payment")
    await expect(refusal).to_contain_text("R21")
    await expect(refusal).to_contain_text("reference")
    await expect(page.locator(".done")).to_have_count(0)
    await expect(page.locator("#resolve_payment-reason")).to_have_value("paid by bank transfer")

    await resolve(page, SETTLED, "paid by bank transfer", reference="SEPA-0042")
    await expect(page.get_by_role("status")).to_contain_text("Done: resolve payment")
    await expect(page.locator(".badge")).to_have_text("under review")
    assert payments.refunds == {}  # settled another way: the provider was not asked again
    settled = await site.pool.fetchrow(
        "SELECT actor, details->>'reference' AS reference FROM case_events"
        " WHERE case_id = $1 AND action = 'payment_settled_elsewhere'",
        case_id,
    )
    assert settled is not None
    assert (settled["actor"], settled["reference"]) == ("sam", "SEPA-0042")

    # The other tab's form: nothing waits any more, and the case says so (409), in place.
    async with stale.expect_response(lambda r: r.request.method == "POST") as sent:
        await resolve(stale, RETRY, "trying it again")
    assert (await sent.value).status == 409
    await expect(stale.locator("#refusal-resolve_payment")).to_contain_text(
        "no declined payment waits for a person (R21)"
    )
    await expect(stale.locator(".done")).to_have_count(0)
    assert payments.refunds == {}


async def test_r21_the_arbiter_may_not_resolve_a_declined_payment(
    site: DeskSite, browser: Browser, payments: SandboxPaymentProvider
) -> None:
    case_id, _ = await declined_compensation(site, browser, payments, "ann", Role.AGENT)
    arbiter, csrf = await signed_in_client(site, "judge", Role.ARBITER)
    answer = await arbiter.post(
        f"/desk/cases/{case_id}/resolve_payment",
        data={"csrf_token": csrf, "action_id": "a-1", "resolution": "retry", "reason": "mine"},
    )
    await arbiter.aclose()
    assert answer.status_code == 403
    assert "resolve_payment is not open to arbiter" in answer.text
    assert (await site.gateway.status(case_id)).status == "payment_declined"
