"""The case's states as data (domain/transitions.py): the check the workflows make at
their one status change, and docs/states.md drawn from the same tables."""

from pathlib import Path

import pytest

from domain.case import CaseKind
from domain.claim import ClaimStatus
from domain.ledger import ACTIONS
from domain.rules import Rule
from domain.state import CaseStatus
from domain.transitions import (
    CASE_TRANSITIONS,
    CLAIM_TRANSITIONS,
    UnlistedTransition,
    check_case_transition,
    check_claim_transition,
    states_document,
)

STATES_PAGE = Path(__file__).parents[2] / "docs" / "states.md"
REGENERATE = (
    ".venv/bin/python -c 'from domain.transitions import states_document; "
    'open("docs/states.md", "w").write(states_document())\''
)


def test_the_states_page_is_drawn_from_the_tables() -> None:
    assert STATES_PAGE.read_text() == states_document(), f"regenerate it: {REGENERATE}"


def test_a_listed_transition_under_its_rule_passes() -> None:
    check_case_transition(
        CaseKind.RETURN, CaseStatus.UNDER_REVIEW, CaseStatus.AWAITING_SHIP_BACK, Rule.R11
    )
    check_case_transition(CaseKind.EXCHANGE, CaseStatus.UNDER_REVIEW, CaseStatus.WITHDRAWN, None)
    check_claim_transition(ClaimStatus.FILING, ClaimStatus.AWAITING_CARRIER, Rule.R15)


def test_a_transition_the_kind_lacks_is_refused_with_what_was_asked() -> None:
    # An exchange never waits for a parcel on its way to the customer (R4 is a return's).
    with pytest.raises(UnlistedTransition, match="exchange case: no transition opened -> "):
        check_case_transition(
            CaseKind.EXCHANGE, CaseStatus.OPENED, CaseStatus.AWAITING_DELIVERY, Rule.R4
        )
    with pytest.raises(UnlistedTransition, match="refunded -> refund_due"):
        check_case_transition(CaseKind.RETURN, CaseStatus.REFUNDED, CaseStatus.REFUND_DUE, Rule.R21)
    with pytest.raises(UnlistedTransition):
        check_claim_transition(ClaimStatus.SETTLED, ClaimStatus.AWAITING_CARRIER, Rule.R15)


def test_a_listed_transition_under_another_rule_is_refused() -> None:
    with pytest.raises(UnlistedTransition, match="listed under R10, R11, not R5"):
        check_case_transition(
            CaseKind.RETURN, CaseStatus.UNDER_REVIEW, CaseStatus.AWAITING_SHIP_BACK, Rule.R5
        )


def test_nothing_leaves_a_closed_case_but_a_dispute_of_its_rejection() -> None:
    for kind, table in CASE_TRANSITIONS.items():
        leaving_closed = {
            (move.source, move.target)
            for move in table
            if isinstance(move.source, CaseStatus) and move.source.is_closed
        }
        assert leaving_closed == {(CaseStatus.REJECTED, CaseStatus.IN_ARBITRATION)}, kind


def test_every_status_the_ledger_vocabulary_leads_to_is_one_a_table_reaches() -> None:
    reached = {move.target for table in CASE_TRANSITIONS.values() for move in table}
    reached |= {move.target for move in CLAIM_TRANSITIONS} | {CaseStatus.OPENED}
    for action, doc in ACTIONS.items():
        assert set(doc.leads_to) <= reached, action
