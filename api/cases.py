"""A case over HTTP: opening it (R1, R2), reading it and its ledger, and sending it news
(signals) and decisions (Updates). The signals and the operators' decisions are routed
from one table each: a route's path, and the handler its message goes to."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field, StrictBool

from api.auth import requires
from api.callers import Arbiter, Auditor, CaseReader, Service
from api.errors import documented
from domain.case import (
    ArbitrationRuling,
    BusinessKey,
    Deadline,
    ExplainedReason,
    MessageId,
    OpenCaseRequest,
    PaymentResolutionChoice,
    RefundConsent,
    RemedyChoice,
    Role,
    RootCause,
    Strict,
)
from domain.money import Money
from domain.view import CaseLedger, CaseView, ServiceView
from infra.case_errors import unknown_case
from infra.case_messages import AUTHORITY, SignalHandler, UpdateHandler, model_of, name_of
from infra.gateway import CaseGateway
from infra.path_params import CaseId
from infra.security.identity import Caller
from workflows.case_handlers import CaseHandlers, ItemBackHandlers
from workflows.damage_claim_case import DamageClaimCase
from workflows.exchange_case import ExchangeCase
from workflows.return_case import ReturnCase


class DecisionBody(Strict):
    action_id: MessageId
    approve: StrictBool
    reason: ExplainedReason | None = None
    root_cause: RootCause | None = None


class CompensationBody(Strict):
    action_id: MessageId
    amount: Money
    reason: ExplainedReason


class EscalationBody(Strict):
    action_id: MessageId
    reason: ExplainedReason


class CallBody(Strict):
    action_id: MessageId
    purpose: ExplainedReason


class AssignmentBody(Strict):
    action_id: MessageId
    agent: BusinessKey


class ExtensionBody(Strict):
    action_id: MessageId
    deadline: Deadline
    extend_by: Annotated[timedelta, Field(gt=timedelta(0), le=timedelta(days=30))]
    reason: ExplainedReason


class PaymentResolutionBody(PaymentResolutionChoice):
    action_id: MessageId


class RulingBody(Strict):
    action_id: MessageId
    favour_customer: StrictBool
    refund: Money | None = None
    reason: ExplainedReason


class CaseAccepted(BaseModel):
    """The answer to an opening request: the case exists and owns the request from now on.
    Its decision (R1 and on) follows within moments at `status_url`."""

    case_id: str
    created: bool
    status_url: str


@dataclass(frozen=True)
class SignalRoute:
    """`POST /cases/{case_id}/<path>`: news from the shop's backend, 202 once durable."""

    path: str
    handler: SignalHandler[Any]


SIGNAL_ROUTES = (
    SignalRoute("evidence", CaseHandlers.evidence_submitted),
    SignalRoute("shipped-back", ItemBackHandlers.shipped_back),
    SignalRoute("complaint", CaseHandlers.complaint),
    SignalRoute("dispute", CaseHandlers.dispute),
    SignalRoute("intercept", ReturnCase.intercept_requested),
    SignalRoute("withdrawal", CaseHandlers.withdraw),
)


@dataclass(frozen=True)
class DecisionRoute:
    """`POST /cases/{case_id}/<path>`: an operator's decision, the body `body` and the
    proven caller its actor and role; the answer is the case after it."""

    path: str
    body: type[Strict]
    handler: UpdateHandler[Any]
    description: str | None = None


DECISION_ROUTES = (
    DecisionRoute("decision", DecisionBody, CaseHandlers.decide),
    DecisionRoute("compensation", CompensationBody, CaseHandlers.offer_compensation),
    DecisionRoute("escalation", EscalationBody, CaseHandlers.escalate),
    DecisionRoute("call", CallBody, CaseHandlers.request_call),
    DecisionRoute("assignment", AssignmentBody, CaseHandlers.assign),
    DecisionRoute("deadline-extension", ExtensionBody, CaseHandlers.extend_deadline),
    DecisionRoute(
        "payment-resolution", PaymentResolutionBody, CaseHandlers.resolve_declined_payment,
        "R21: a declined payment retried under its key, or recorded settled another way.",
    ),
)  # fmt: skip


def _route_name(path: str) -> str:
    """The route's name, which names its OpenAPI operation: the path's last segment
    (`shipped-back` is `shipped_back`)."""
    return path.replace("-", "_")


def opening_router(gateway: CaseGateway, route_class: type[APIRoute]) -> APIRouter:
    router = APIRouter(route_class=route_class)

    @router.post(
        "/cases",
        status_code=status.HTTP_201_CREATED,
        responses={
            200: {"model": CaseAccepted, "description": "the same request again (R2)"},
            **documented(409),
        },
    )
    async def open_case(request: OpenCaseRequest, response: Response, _: Service) -> CaseAccepted:
        """Open a case (R2: idempotent; the same request again answers 200). Answers once
        the request is stored and the case started, before the case's first decision.
        R1: a requested_at later than our receipt (beyond a few minutes of clock skew) is
        422; one older than the policy's allowance before receipt is judged at receipt."""
        created = await gateway.accept_case(gateway.received_now(request))
        if not created:
            response.status_code = status.HTTP_200_OK
        return CaseAccepted(
            case_id=request.case_id, created=created, status_url=f"/cases/{request.case_id}"
        )

    return router


def case_router(gateway: CaseGateway, route_class: type[APIRoute]) -> APIRouter:
    """A case's own routes; after the lists and queues (api/queues.py), whose paths
    `/cases/{case_id}` would otherwise take."""
    router = APIRouter(route_class=route_class)
    _add_reads(router, gateway)
    for signal in SIGNAL_ROUTES:
        router.add_api_route(
            f"/cases/{{case_id}}/{signal.path}", _signal_endpoint(gateway, signal.handler),
            methods=["POST"], name=_route_name(signal.path),
            status_code=status.HTTP_202_ACCEPTED, responses=documented(404, 409, 410),
        )  # fmt: skip
    _add_customer_choices(router, gateway)
    for decision in DECISION_ROUTES:
        router.add_api_route(
            f"/cases/{{case_id}}/{decision.path}", _decision_endpoint(gateway, decision),
            methods=["POST"], name=_route_name(decision.path),
            responses=documented(404, 409, 410), description=decision.description,
        )  # fmt: skip
    _add_ruling(router, gateway)
    return router


def _add_reads(router: APIRouter, gateway: CaseGateway) -> None:
    @router.get("/cases/{case_id}", responses=documented(404, 410))
    async def read_case(
        case_id: CaseId, caller: CaseReader, fresh: Annotated[bool, Query()] = False
    ) -> CaseView | ServiceView:
        """The case as the caller's role may see it: the shop's backend what it tells the
        customer (ServiceView), staff the working view (CaseView), the arbiter the working
        view of a disputed case only; any other case answers 404, as an unknown one does,
        so the arbiter learns nothing of cases that are not theirs to rule on (R19).
        Read from PostgreSQL as of the case's last ledger step (R23), so it answers after
        Temporal's retention and with no worker running. `fresh=true` asks the workflow
        itself (503 naming the worker if none answers); a decision's answer is as fresh."""
        if caller.role is Role.ARBITER:
            return await gateway.arbitration_view(case_id, fresh=fresh)
        view = await gateway.status(case_id, fresh=fresh)
        return view.for_service() if caller.role is Role.SERVICE else view

    @router.get("/cases/{case_id}/ledger", responses=documented(404))
    async def ledger(case_id: CaseId, caller: Auditor) -> CaseLedger:
        """R23: the case's audit trail from PostgreSQL, oldest step first, for staff and
        (for a disputed case only, else 404) the arbiter. Customers are named by role, and
        complaint words, messages as they arrived and photo URLs (a count) are left out,
        as in the working view (docs/privacy.md)."""
        # Internal notes are the merchant's own: not for the platform's arbiter.
        trail = await gateway.ledger(case_id, with_notes=caller.role is not Role.ARBITER)
        if caller.role is Role.ARBITER and not trail.disputed:
            raise unknown_case(case_id)
        return trail


def _signal_endpoint(
    gateway: CaseGateway, handler: SignalHandler[Any]
) -> Callable[..., Awaitable[dict[str, str]]]:
    accepted = name_of(handler)

    async def endpoint(case_id: CaseId, body: BaseModel, _: Service) -> dict[str, str]:
        await gateway.tell(case_id, handler, body)
        return {"case_id": case_id, "accepted": accepted}

    # The body FastAPI validates and documents: the handler's own message.
    endpoint.__annotations__["body"] = model_of(handler)
    return endpoint


def _decision_endpoint(
    gateway: CaseGateway, route: DecisionRoute
) -> Callable[..., Awaitable[CaseView]]:
    message = model_of(route.handler)

    async def endpoint(case_id: CaseId, body: Strict, caller: Caller) -> CaseView:
        # The decider is the proven caller, never what the body says (R23).
        decision = message(actor=caller.actor, role=caller.role, **body.model_dump())
        return await gateway.decide(case_id, route.handler, decision, caller)

    endpoint.__annotations__["body"] = route.body
    # Those who may send the Update, as the registry names them.
    endpoint.__annotations__["caller"] = Annotated[
        Caller, Depends(requires(*AUTHORITY[route.handler]))
    ]
    return endpoint


def _add_customer_choices(router: APIRouter, gateway: CaseGateway) -> None:
    """The customer's choices, sent by the shop's backend: the case as it tells them."""

    @router.post("/cases/{case_id}/remedy", responses=documented(404, 409, 410))
    async def remedy(case_id: CaseId, body: RemedyChoice, caller: Service) -> ServiceView:
        view = await gateway.decide(case_id, DamageClaimCase.choose_remedy, body, caller)
        return view.for_service()

    @router.post("/cases/{case_id}/refund-consent", responses=documented(404, 409, 410))
    async def refund_consent(case_id: CaseId, body: RefundConsent, caller: Service) -> ServiceView:
        view = await gateway.decide(case_id, ExchangeCase.consent_to_refund, body, caller)
        return view.for_service()


def _add_ruling(router: APIRouter, gateway: CaseGateway) -> None:
    @router.post("/cases/{case_id}/ruling", responses=documented(404, 409, 410))
    async def ruling(case_id: CaseId, body: RulingBody, caller: Arbiter) -> CaseView:
        """R19; a case never disputed answers 404, as for reading it."""
        await gateway.arbitration_view(case_id, fresh=True)
        ruled = ArbitrationRuling(actor=caller.actor, role=caller.role, **body.model_dump())
        return await gateway.decide(case_id, CaseHandlers.apply_ruling, ruled, caller)
