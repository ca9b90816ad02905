"""The ledger's one vocabulary (R23): every action, details shape, template and purpose
documented, docs/ledger.md rendered from the code, and undocumented shapes refused."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from activities.notifications import TEMPLATES, CustomerMessage, Template
from domain.ledger import (
    ACTIONS,
    PAID_ACTION,
    PURPOSES,
    Ledger,
    LedgerAction,
    RefundPurpose,
    ShipmentPurpose,
    UndocumentedEntry,
    check_ledger,
    checked_details,
)
from domain.sla import SlaBreach, SlaClock
from infra import ledger_doc
from infra.ledger_doc import DOC, render

AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def test_r23_every_word_of_the_vocabulary_is_documented() -> None:
    assert set(ACTIONS) == set(LedgerAction)
    assert all(ACTIONS[a].meaning for a in LedgerAction)
    assert set(TEMPLATES) == set(Template)
    assert set(PURPOSES) == set(RefundPurpose) | set(ShipmentPurpose)
    # Every refund that leaves the case open records its own action.
    assert set(PAID_ACTION) == set(RefundPurpose) - {RefundPurpose.REFUND}
    assert all(ACTIONS[a].meaning for a in PAID_ACTION.values())


def test_r23_the_ledger_doc_is_rendered_from_the_code_and_current() -> None:
    # Stale: run `python -m infra.ledger_doc` and commit docs/ledger.md.
    assert DOC.read_text() == render()
    for action in LedgerAction:
        assert f"| `{action.value}` |" in DOC.read_text()


def test_r23_the_ledger_doc_command_writes_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = tmp_path / "ledger.md"
    doc.write_text("stale")
    monkeypatch.setattr(ledger_doc, "DOC", doc)
    with pytest.raises(SystemExit) as help_asked:
        ledger_doc.main(["--help"])
    assert help_asked.value.code == 0
    assert ledger_doc.main(["--check"]) == 1
    assert doc.read_text() == "stale"  # neither --help nor --check wrote it
    assert ledger_doc.main([]) == 0
    assert doc.read_text() == render()
    assert ledger_doc.main(["--check"]) == 0


def test_r12_a_late_shipping_notice_leaves_the_status_as_the_doc_says() -> None:
    """The parcel was scanned before the notice came: the case stays where the scan put
    it, and the doc says so rather than promising in_return_transit."""
    doc = ACTIONS[LedgerAction.CUSTOMER_SHIPPED_BACK]
    assert doc.unchanged_if
    assert f"`in_return_transit`; unchanged if {doc.unchanged_if}" in render()


def test_r23_details_as_written_today_are_kept_exactly() -> None:
    received = {"scan_id": "s1", "station": "DOCK-1", "scanned_at": AT.isoformat()}
    assert checked_details(LedgerAction.PARCEL_RECEIVED, received) == received
    inspected = {
        "scan_id": "s2", "station": "QC-1", "grade": "damaged", "disposition": "repair",
        "photos": 2, "missing_items": [{"sku": "CABLE", "value": {"amount_minor": 500,
                                                                  "currency": "EUR"}}],
    }  # fmt: skip
    assert checked_details(LedgerAction.INSPECTION_FAILED, inspected) == inspected
    opened = {"channel": "web", "request_id": "r1"}  # no R1 judgement: the keys stay out
    assert checked_details(LedgerAction.CASE_OPENED, opened) == opened
    assert checked_details(LedgerAction.REVIEW_STARTED, {}) == {}


@pytest.mark.parametrize(
    ("action", "details"),
    [
        (LedgerAction.ESCALATED, {"level": "supervisor", "mood": "angry"}),  # unknown field
        (LedgerAction.REFUND_ISSUED, {"amount_minor": 100, "currency": "EUR"}),  # no key
        (LedgerAction.PARCEL_RECEIVED, {"scan_id": "s", "station": "D", "scanned_at": "x"}),
        (LedgerAction.APPROVED, {"by": "ann"}),  # an action with no details
    ],
)
def test_r23_an_undocumented_details_shape_is_refused(
    action: LedgerAction, details: dict[str, object]
) -> None:
    with pytest.raises(UndocumentedEntry, match=action.value):
        checked_details(action, details)


def test_r18_an_escalation_carries_its_breach_as_structured_data() -> None:
    breach = SlaBreach(clock=SlaClock.INSPECTION, due_at=AT, breached_at=AT)
    stored = checked_details(LedgerAction.ESCALATED, {"level": "manager", "breach": breach})
    assert stored == {
        "level": "manager",
        "breach": {"clock": "inspection_deadline", "due_at": "2026-11-20T10:00:00Z",
                   "breached_at": "2026-11-20T10:00:00Z"},
    }  # fmt: skip
    assert SlaBreach.model_validate(stored["breach"]).rule == "R13"
    # Every time in details carries its offset, the nested breach's too.
    with pytest.raises(ValidationError, match="timezone"):
        SlaBreach(clock=SlaClock.INSPECTION, due_at=AT.replace(tzinfo=None), breached_at=AT)


def test_r14_an_update_records_the_slot_it_was_due_at_with_its_offset() -> None:
    stored = checked_details(LedgerAction.PROGRESS_UPDATE_SENT, {"due_at": AT})
    assert stored == {"due_at": "2026-11-20T10:00:00+00:00"}
    with pytest.raises(UndocumentedEntry, match="progress_update_sent"):
        checked_details(LedgerAction.PROGRESS_UPDATE_SENT, {"due_at": AT.replace(tzinfo=None)})
    with pytest.raises(UndocumentedEntry, match="progress_update_sent"):
        checked_details(LedgerAction.PROGRESS_UPDATE_SENT, {})


def test_r15_a_claim_action_belongs_to_the_claim_ledger_only() -> None:
    check_ledger(LedgerAction.CLAIM_FILED, Ledger.CLAIM)
    check_ledger(LedgerAction.CASE_OPENED, Ledger.CASE)
    with pytest.raises(UndocumentedEntry, match="claim_events"):
        check_ledger(LedgerAction.CLAIM_FILED, Ledger.CASE)
    with pytest.raises(UndocumentedEntry, match="case_events"):
        check_ledger(LedgerAction.APPROVED, Ledger.CLAIM)
    check_ledger(LedgerAction.BATCH_FLAGGED, Ledger.BATCH)
    with pytest.raises(UndocumentedEntry, match="batch_events"):
        check_ledger(LedgerAction.BATCH_FLAGGED, Ledger.CASE)


def test_r16_a_message_carries_exactly_its_templates_parameters() -> None:
    def message(params: dict[str, str]) -> CustomerMessage:
        return CustomerMessage(
            idempotency_key="k", case_id="c", customer_id="cust",
            template=Template.REFUND_ISSUED, params=params, due_at=AT,
        )  # fmt: skip

    assert message({"amount": "10.00 EUR"}).params == {"amount": "10.00 EUR"}
    with pytest.raises(ValueError, match="refund_issued takes"):
        message({"amount": "10.00 EUR", "iban": "DE00"})
    with pytest.raises(ValueError, match="refund_issued takes"):
        message({})
