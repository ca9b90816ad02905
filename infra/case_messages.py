"""The messages a case takes, each named once: by its handler method on the workflow
class. The ways in (routes, the desk, the CLI, the demo) pass the handler itself, as the
SDK's client takes it (`handle.signal(handler, ...)`, `handle.execute_update(handler,
...)`); the name it travels under, the model that validates it and the kinds that take
it are read from the handler here, so none of them can drift from the workflows."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeAlias, TypeVar, get_type_hints

from pydantic import BaseModel
from temporalio.client import Client, WorkflowHandle
from temporalio.workflow import UpdateMethodMultiParam

from domain.case import STAFF_BY_AUTHORITY, CaseKind, Role
from domain.state import CaseState
from domain.view import CaseView
from workflows.case_handlers import CaseHandlers, ItemBackHandlers
from workflows.damage_claim_case import DamageClaimCase
from workflows.exchange_case import ExchangeCase
from workflows.return_case import ReturnCase

M = TypeVar("M", bound=BaseModel)
# Fire-and-forget news (a signal) and a decision that needs an answer (an Update).
SignalHandler: TypeAlias = Callable[[Any, M], None]
UpdateHandler: TypeAlias = UpdateMethodMultiParam[[Any, M], CaseView]

CaseWorkflow: TypeAlias = ReturnCase | ExchangeCase | DamageClaimCase
WORKFLOW_OF_KIND: Mapping[CaseKind, type[CaseWorkflow]] = {
    CaseKind.RETURN: ReturnCase,
    CaseKind.EXCHANGE: ExchangeCase,
    CaseKind.DAMAGE_CLAIM: DamageClaimCase,
}
# A case's workflow, whatever its kind: it takes the handlers every kind shares, and
# `takes` says which others its kind has.
CaseHandle: TypeAlias = WorkflowHandle[CaseHandlers, CaseState]


def case_handle(client: Client, case_id: str) -> CaseHandle:
    return client.get_workflow_handle(case_id, result_type=CaseState)


SIGNALS: tuple[SignalHandler[Any], ...] = (
    ItemBackHandlers.shipped_back,
    CaseHandlers.warehouse_scan,
    CaseHandlers.evidence_submitted,
    CaseHandlers.complaint,
    CaseHandlers.dispute,
    ReturnCase.parcel_delivered,
    ReturnCase.intercept_requested,
    CaseHandlers.withdraw,
)
# Every Update a case takes, and who may send it, most authority first: the API's routes,
# the CLI and the decision grants (infra/security/grants.py) read it here. The workflow's
# validators still judge the finer rules (R17's agent limit, R19's arbiter, ...); the
# grants refuse an Update nobody listed, and a customer's choice (R8, R22) sent by anyone
# but a backend service.
AUTHORITY: Mapping[UpdateHandler[Any], tuple[Role, ...]] = {
    CaseHandlers.decide: STAFF_BY_AUTHORITY,
    CaseHandlers.offer_compensation: STAFF_BY_AUTHORITY,
    CaseHandlers.escalate: STAFF_BY_AUTHORITY,
    CaseHandlers.request_call: STAFF_BY_AUTHORITY,
    CaseHandlers.assign: STAFF_BY_AUTHORITY,
    CaseHandlers.extend_deadline: STAFF_BY_AUTHORITY,
    DamageClaimCase.choose_remedy: (Role.SERVICE,),
    ExchangeCase.consent_to_refund: (Role.SERVICE,),
    CaseHandlers.apply_ruling: (Role.ARBITER,),
    CaseHandlers.resolve_declined_payment: STAFF_BY_AUTHORITY,
}


def name_of(handler: Callable[..., object]) -> str:
    """The name a message travels under: its handler method's. The SDK registers a
    handler under its method's name unless the decorator names it otherwise, and no
    handler of a case does (tests/unit/test_case_messages.py holds the wire names)."""
    return handler.__name__


def model_of(handler: Callable[[Any, M], object]) -> type[M]:
    """The model that validates a message: its handler's one parameter."""
    hints = get_type_hints(handler)
    [parameter] = [name for name in hints if name != "return"]
    model: type[M] = hints[parameter]
    return model


def takes(kind: CaseKind, handler: Callable[..., object]) -> bool:
    """Whether a case of `kind` has this handler (a kind's class inherits or declares it)."""
    return getattr(WORKFLOW_OF_KIND[kind], name_of(handler), None) is handler


SIGNAL_BY_NAME: Mapping[str, SignalHandler[Any]] = {name_of(h): h for h in SIGNALS}
UPDATE_BY_NAME: Mapping[str, UpdateHandler[Any]] = {name_of(h): h for h in AUTHORITY}
# A signal the workflow type has no handler for is buffered by the SDK for ever, so news a
# kind cannot take is refused before it is sent; an Update it has no handler for would
# come back as the SDK's own words.
SIGNALS_OF_KIND: Mapping[CaseKind, frozenset[str]] = {
    kind: frozenset(name for name, h in SIGNAL_BY_NAME.items() if takes(kind, h))
    for kind in WORKFLOW_OF_KIND
}
UPDATES_OF_KIND: Mapping[CaseKind, frozenset[str]] = {
    kind: frozenset(name for name, h in UPDATE_BY_NAME.items() if takes(kind, h))
    for kind in WORKFLOW_OF_KIND
}
