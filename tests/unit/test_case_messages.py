"""Every message a case takes is named once, by its handler (infra/case_messages.py): the
registry holds each signal and Update that every kind's workflow registers, under the name
the SDK registers it by, and who may send each Update, so the API, the desk, the CLI and
the grants cannot drift from the workflows."""

from __future__ import annotations

from temporalio import workflow

from api.cases import DECISION_ROUTES
from domain.case import STAFF_BY_AUTHORITY
from infra.case_messages import (
    AUTHORITY,
    SIGNAL_BY_NAME,
    SIGNALS_OF_KIND,
    UPDATE_BY_NAME,
    UPDATES_OF_KIND,
    WORKFLOW_OF_KIND,
)
from workflows.carrier_claim import CarrierClaim
from workflows.damage_claim_case import DamageClaimCase
from workflows.exchange_case import ExchangeCase
from workflows.return_case import ReturnCase
from workflows.survey import SatisfactionSurvey


def test_the_registry_names_every_handler_each_kind_registers() -> None:
    for kind, definition in WORKFLOW_OF_KIND.items():
        # The SDK's own record of the class's handlers, read here only, as a check.
        registered = workflow._Definition.must_from_class(definition)
        assert {n for n in registered.signals if n} == SIGNALS_OF_KIND[kind], kind
        assert {n for n in registered.updates if n} == UPDATES_OF_KIND[kind], kind
        for name in SIGNALS_OF_KIND[kind]:
            assert registered.signals[name].fn is SIGNAL_BY_NAME[name]
        for name in UPDATES_OF_KIND[kind]:
            assert registered.updates[name].fn is UPDATE_BY_NAME[name]


def test_the_operators_decision_routes_are_the_updates_staff_send() -> None:  # R17, R23
    staff_sends = {u for u, senders in AUTHORITY.items() if senders == STAFF_BY_AUTHORITY}
    assert {route.handler for route in DECISION_ROUTES} == staff_sends


# The names each workflow type is known by on the wire, as running cases and the recorded
# histories (tests/histories/) hold them: a handler renamed or named otherwise fails here.
_CASE_SIGNALS = {"complaint", "dispute", "evidence_submitted", "warehouse_scan", "withdraw"}
_CASE_UPDATES = {
    "apply_ruling", "assign", "decide", "escalate", "extend_deadline", "offer_compensation",
    "request_call", "resolve_declined_payment",
}  # fmt: skip
WIRE_NAMES: dict[type, tuple[set[str], set[str], set[str]]] = {
    ReturnCase: (
        _CASE_SIGNALS | {"shipped_back", "parcel_delivered", "intercept_requested"},
        {"state"},
        _CASE_UPDATES,
    ),
    ExchangeCase: (
        _CASE_SIGNALS | {"shipped_back"},
        {"state"},
        _CASE_UPDATES | {"consent_to_refund"},
    ),
    DamageClaimCase: (_CASE_SIGNALS, {"state"}, _CASE_UPDATES | {"choose_remedy"}),
    CarrierClaim: ({"carrier_response"}, {"state"}, set()),
    SatisfactionSurvey: ({"survey_answered"}, {"answers"}, set()),
}


def test_every_workflow_registers_its_messages_under_their_wire_names() -> None:
    for definition, (signals, queries, updates) in WIRE_NAMES.items():
        registered = workflow._Definition.must_from_class(definition)
        assert registered.name == definition.__name__
        assert {n for n in registered.signals if n} == signals, definition
        assert {n for n in registered.queries if n} == queries, definition
        assert {n for n in registered.updates if n} == updates, definition
