"""The desk's routes: signing in and out, and a case's page with its decisions as forms.
Every decision goes through the gateway's `decide`, as the API's do, under the signed-in
person's identity (the gateway signs its grant for them, infra/security/grants.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from pydantic import ValidationError

from activities.policy_file import PolicyFile
from desk.case_actions import actions_of_role, available_actions, money_panel
from desk.forms import (
    ACTION_ID_FIELD,
    EXTENSION_DAYS,
    AssignForm,
    BadForm,
    ExplainedForm,
    ExtendForm,
    Forbidden,
    NoteForm,
    RejectionReason,
    ReviewForm,
    RulingForm,
    amount_of,
    blank_as_none,
    new_action_id,
    posted,
    said,
)
from desk.gate import (
    CALLBACK_PATH,
    DESK_PATH,
    SESSION_COOKIE,
    SIGN_IN_PATH,
    DeskGate,
    safe_return,
)
from desk.oidc import OidcProvider
from desk.queues import add_kept_routes, add_queue_routes, navigation
from desk.rendering import Asset, asset, page
from desk.sessions import SESSION_LENGTH, SessionStore
from domain.case import (
    STAFF_BY_AUTHORITY,
    ArbitrationRuling,
    Assignment,
    CallRequest,
    CompensationOffer,
    Deadline,
    DeadlineExtension,
    EscalationRequest,
    ReviewDecision,
    Role,
    RootCause,
)
from domain.state import EXTENDABLE, CaseMessage
from domain.view import CaseView
from infra.case_errors import (
    CaseErasedError,
    RefusedDecisionError,
    RefusedInputError,
    UnknownCaseError,
)
from infra.case_messages import UpdateHandler
from infra.case_notes import NoteIdTakenError
from infra.case_page import CasePageReads
from infra.gateway import CaseGateway
from infra.path_params import CaseId
from infra.security.identity import (
    Caller,
    Principal,
    Unauthenticated,
    acting_role,
    is_loopback,
    staff_principal,
)
from infra.settings import Settings
from workflows.case_handlers import CaseHandlers

# The people the desk is for, most authority first (infra/security/identity.py `acting_role`).
DESK_ROLES = (*STAFF_BY_AUTHORITY, Role.ARBITER)
# Pre-session token for the development sign-in form (login CSRF): a cookie and a field.
_SIGN_IN_COOKIE = "aftersales_desk_sign_in"
_STATE_COOKIE = "aftersales_desk_state"


@dataclass(frozen=True)
class DeskSettings:
    """`oidc` None: the development sign-in (a named person and a role), which answers
    loopback browsers only (infra/security/edge_identity.py refuses it off loopback at start-up)."""

    temporal_ui_url: str
    namespace: str
    oidc: OidcProvider | None


def desk_settings(settings: Settings) -> DeskSettings:
    issuer = settings.oidc_issuer
    return DeskSettings(
        temporal_ui_url=settings.temporal_ui_url,
        namespace=settings.temporal_namespace,
        oidc=OidcProvider(issuer, settings.oidc_client_id, settings.oidc_client_secret)
        if issuer
        else None,
    )


class Desk:
    """The desk as create_app takes it: its routes and its gate (the session check
    `api.auth.Authentication` runs before any desk route reads a body)."""

    def __init__(
        self, gateway: CaseGateway, pool: asyncpg.Pool, policy: PolicyFile, settings: DeskSettings
    ) -> None:
        self.sessions = SessionStore(pool)
        self.gate = DeskGate(self.sessions)
        self.router = _router(gateway, CasePageReads(pool), policy, settings, self.sessions)


def acting(request: Request, *roles: Role) -> Caller:
    """The signed-in person acting in the first of `roles` they hold, or Forbidden."""
    principal: Principal = request.state.principal
    role = acting_role(principal, roles)
    if role is None:
        allowed = ", ".join(r.value for r in roles)
        raise Forbidden(f"role: {principal.actor} may not open this (allowed: {allowed})")
    return Caller(actor=principal.actor, role=role)


class _DeskRoute(APIRoute):
    """What the desk's handlers raise, answered as pages: a role not allowed (403), a case
    unknown (404) or erased (410), a value the desk cannot take (422, naming the field,
    never echoing it). The API's JSON refusal is no answer for a browser, and it would
    keep the form's body, session's CSRF token and all, among refused input."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def as_page(request: Request) -> Response:
            try:
                return await handler(request)
            except (RequestValidationError, ValidationError) as invalid:
                return _problem(request, status.HTTP_422_UNPROCESSABLE_CONTENT, said(invalid))
            except BadForm as invalid:
                return _problem(request, status.HTTP_422_UNPROCESSABLE_CONTENT, str(invalid))
            except Forbidden as refusal:
                return _problem(request, status.HTTP_403_FORBIDDEN, str(refusal))
            except CaseErasedError as gone:
                return _problem(request, status.HTTP_410_GONE, str(gone))
            except UnknownCaseError as unknown:
                return _problem(request, status.HTTP_404_NOT_FOUND, str(unknown))

        return as_page


def _problem(request: Request, status_code: int, message: str) -> Response:
    return page(request, "problem.html", {"message": message}, status_code=status_code)


def _secure(request: Request) -> bool:
    """Cookies are `Secure` except on a loopback host (plain http on the developer's
    machine); anywhere else the desk is served over https."""
    return not is_loopback(request.url.hostname or "")


def _from_this_machine(request: Request) -> bool:
    """The development sign-in's condition: a loopback peer that also names a loopback
    host. A page of another site whose name is re-pointed at 127.0.0.1 (DNS rebinding)
    comes from loopback but keeps its own Host: signing it in would let its script drive
    the desk under its own origin."""
    peer = request.client.host if request.client else ""
    return is_loopback(peer) and is_loopback(request.url.hostname or "")


def _router(
    gateway: CaseGateway,
    reads: CasePageReads,
    policy: PolicyFile,
    settings: DeskSettings,
    sessions: SessionStore,
) -> APIRouter:
    router = APIRouter(prefix=DESK_PATH, route_class=_DeskRoute, include_in_schema=False)

    @router.get("/static/{name}")
    async def static(name: Asset) -> Response:
        return asset(name)

    _add_sign_in_routes(router, settings, sessions)
    _add_case_routes(router, _CasePages(gateway, reads, policy, settings))
    add_queue_routes(router, gateway, reads, acting, DESK_ROLES)
    add_kept_routes(router, gateway, reads, acting)
    return router


async def _open_session(
    request: Request, sessions: SessionStore, principal: Principal, return_to: str
) -> Response:
    if acting_role(principal, DESK_ROLES) is None:
        return _problem(request, status.HTTP_403_FORBIDDEN,
                        f"role: {principal.actor} holds no desk role (agent, supervisor, "
                        "manager, arbiter)")  # fmt: skip
    session_id = await sessions.open(principal)
    answer = RedirectResponse(safe_return(return_to), status_code=status.HTTP_303_SEE_OTHER)
    answer.set_cookie(
        SESSION_COOKIE, session_id, max_age=int(SESSION_LENGTH.total_seconds()), path="/",
        httponly=True, samesite="lax", secure=_secure(request),
    )  # fmt: skip
    return answer


def _add_sign_in_routes(router: APIRouter, settings: DeskSettings, sessions: SessionStore) -> None:
    """The development sign-in (a named person in one desk role, from this machine) and
    signing out; the identity provider's sign-in in `_add_oidc_routes`."""

    @router.get("/sign-in")
    async def sign_in_page(request: Request, return_to: str | None = None) -> Response:
        # The least authority first: what a newcomer trying the desk most likely is.
        roles = [*reversed(STAFF_BY_AUTHORITY), Role.ARBITER]
        context: dict[str, Any] = {"return_to": safe_return(return_to), "oidc": settings.oidc,
                                   "roles": roles, "form_token": None}  # fmt: skip
        if settings.oidc is not None:
            return page(request, "sign_in.html", context)
        if not _from_this_machine(request):
            return _problem(request, status.HTTP_403_FORBIDDEN,
                            "the development sign-in answers on this machine only")  # fmt: skip
        token = new_action_id()
        answer = page(request, "sign_in.html", context | {"form_token": token})
        answer.set_cookie(_SIGN_IN_COOKIE, token, path=SIGN_IN_PATH, httponly=True,
                          samesite="strict", secure=_secure(request))  # fmt: skip
        return answer

    @router.post("/sign-in")
    async def dev_sign_in(request: Request) -> Response:
        """The development sign-in: a named person in one desk role, from this machine."""
        if settings.oidc is not None or not _from_this_machine(request):
            return _problem(request, status.HTTP_404_NOT_FOUND, "no development sign-in here")
        form = await request.form()
        person, role = str(form.get("person", "")).strip(), str(form.get("role", ""))
        expected = request.cookies.get(_SIGN_IN_COOKIE, "")
        if not expected or form.get("form_token") != expected:
            return _problem(
                request,
                status.HTTP_403_FORBIDDEN,
                "form_token: the sign-in form is not this browser's; reload it",
            )
        if role not in {r.value for r in DESK_ROLES}:
            return _problem(request, status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"role: {role!r} is not a desk role")  # fmt: skip
        try:
            # Mapped as a staff token's claims are: the same staff ids, none reserved.
            principal = staff_principal({"sub": person, "roles": [role]})
        except Unauthenticated as problem:
            return _problem(request, status.HTTP_422_UNPROCESSABLE_CONTENT, f"person: {problem}")
        return_to = str(form.get("return_to", DESK_PATH))
        answer = await _open_session(request, sessions, principal, return_to)
        answer.delete_cookie(_SIGN_IN_COOKIE, path=SIGN_IN_PATH)
        return answer

    _add_oidc_routes(router, settings, sessions)

    @router.post("/sign-out")
    async def sign_out(request: Request) -> Response:
        await posted(request)
        await sessions.close(request.cookies.get(SESSION_COOKIE, ""))
        answer = RedirectResponse(SIGN_IN_PATH, status_code=status.HTTP_303_SEE_OTHER)
        answer.delete_cookie(SESSION_COOKIE, path="/")
        return answer


def _add_oidc_routes(router: APIRouter, settings: DeskSettings, sessions: SessionStore) -> None:
    @router.get("/sign-in/oidc")
    async def oidc_sign_in(request: Request, return_to: str | None = None) -> Response:
        if settings.oidc is None:
            return _problem(request, status.HTTP_404_NOT_FOUND, "no identity provider is set")
        try:
            redirect = await settings.oidc.redirect(
                str(request.url_for("oidc_callback")), safe_return(return_to)
            )
        except Unauthenticated as problem:
            return _problem(request, status.HTTP_503_SERVICE_UNAVAILABLE, f"sign-in: {problem}")
        await sessions.begin_sign_in(redirect.state, redirect.sign_in)
        answer = RedirectResponse(redirect.url, status_code=status.HTTP_303_SEE_OTHER)
        # Lax: the provider's redirect back is a top-level GET from another site.
        answer.set_cookie(_STATE_COOKIE, redirect.state, path=CALLBACK_PATH, httponly=True,
                          samesite="lax", secure=_secure(request), max_age=600)  # fmt: skip
        return answer

    @router.get("/callback", name="oidc_callback")
    async def oidc_callback(
        request: Request,
        code: Annotated[str, Query(max_length=2048)] = "",
        state: Annotated[str, Query(max_length=256)] = "",
    ) -> Response:
        if settings.oidc is None:
            return _problem(request, status.HTTP_404_NOT_FOUND, "no identity provider is set")
        # The state must be the one this browser was sent off with (no login CSRF).
        sign_in = None
        if state and request.cookies.get(_STATE_COOKIE) == state:
            sign_in = await sessions.finish_sign_in(state)
        if sign_in is None or not code:
            return _problem(request, status.HTTP_401_UNAUTHORIZED,
                            "sign-in: this answer is not for a sign-in this browser began; "
                            "sign in again")  # fmt: skip
        try:
            principal = await settings.oidc.principal(
                code, str(request.url_for("oidc_callback")), sign_in
            )
        except Unauthenticated as problem:
            return _problem(request, status.HTTP_401_UNAUTHORIZED, f"sign-in: {problem}")
        answer = await _open_session(request, sessions, principal, sign_in.return_to)
        answer.delete_cookie(_STATE_COOKIE, path=CALLBACK_PATH)
        return answer


class _CasePages:
    """A case's page, as the person signed in may read it."""

    def __init__(
        self, gateway: CaseGateway, reads: CasePageReads, policy: PolicyFile, settings: DeskSettings
    ) -> None:
        self.gateway = gateway
        self._reads = reads
        self._policy = policy
        self._settings = settings

    async def readable(self, case_id: str, caller: Caller) -> CaseView:
        """The case as this person may read it: the arbiter a disputed case only (any
        other is unknown to them, as in the API, R19)."""
        if caller.role is Role.ARBITER:
            return await self.gateway.arbitration_view(case_id)
        return await self.gateway.status(case_id)

    async def page(
        self,
        request: Request,
        case_id: str,
        caller: Caller,
        *,
        refusal: RefusedDecisionError | BadForm | None = None,
        refused_action: str | None = None,
        submitted: dict[str, str] | None = None,
    ) -> Response:
        """The case's page; after a refusal, with why beside the form sent and what was
        typed in it kept (a new action id: the refused one would be refused again)."""
        view = await self.readable(case_id, caller)
        case_policy = self._policy.resolve(view.category, view.carrier)
        # Independent reads, each on its own pooled connection: the page waits for the
        # slowest, not their sum.
        ledger, messages, photos, nav = await asyncio.gather(
            # Internal notes are the merchant's own: not for the platform's arbiter.
            self.gateway.ledger(case_id, with_notes=caller.role is not Role.ARBITER),
            self._reads.messages(case_id), self._reads.photos(case_id),
            navigation(self.gateway, self._reads, caller),
        )  # fmt: skip
        settings = self._settings
        context = {
            "nav": nav,
            "view": view,
            "caller": caller,
            "money": money_panel(view, caller, case_policy),
            "actions": available_actions(view, caller, case_policy),
            "events": ledger.events,
            "notes": ledger.notes,
            "messages": messages,
            "photos": photos,
            "temporal_url": f"{settings.temporal_ui_url.rstrip('/')}/namespaces/"
            f"{settings.namespace}/workflows/{case_id}",
            "action_id": new_action_id(),
            "root_causes": list(RootCause),
            "rejection_reasons": list(RejectionReason),
            "extendable": [d for d in Deadline if EXTENDABLE[d][0] is view.status],
            "extension_days": EXTENSION_DAYS,
            "refusal": refusal,
            "refusal_rule": getattr(refusal, "rule", None),
            "refused_action": refused_action,
            "submitted": submitted or {},
            "done": request.query_params.get("done"),
        }
        code = status.HTTP_409_CONFLICT if isinstance(refusal, RefusedDecisionError) else (
            status.HTTP_422_UNPROCESSABLE_CONTENT if refusal else status.HTTP_200_OK
        )  # fmt: skip
        return page(request, "case.html", context, status_code=code)


def _add_case_routes(router: APIRouter, pages: _CasePages) -> None:
    gateway = pages.gateway

    @router.get("/cases/{case_id}")
    async def show_case(request: Request, case_id: CaseId) -> Response:
        return await pages.page(request, case_id, acting(request, *DESK_ROLES))

    @router.post("/cases/{case_id}/notes")
    async def add_note(request: Request, case_id: CaseId) -> Response:
        """An internal note, under its author (infra/case_notes.py); the page's id for it
        writes it once however often the form is sent."""
        caller = acting(request, *STAFF_BY_AUTHORITY)
        fields = await posted(request)
        await pages.readable(case_id, caller)
        try:
            note = NoteForm.model_validate({"text": fields.get("text", "")})
            await gateway.add_note(case_id, fields.get(ACTION_ID_FIELD, ""), note.text, caller)
        except (ValidationError, NoteIdTakenError) as problem:
            message = str(problem) if isinstance(problem, NoteIdTakenError) else (
                f"text: {problem.errors()[0]['msg']}"
            )  # fmt: skip
            return await pages.page(request, case_id, caller, refusal=BadForm(message),
                                    refused_action="note", submitted=fields)  # fmt: skip
        return RedirectResponse(f"{DESK_PATH}/cases/{case_id}?done=note",
                                status_code=status.HTTP_303_SEE_OTHER)  # fmt: skip

    @router.post("/cases/{case_id}/{action}")
    async def act(request: Request, case_id: CaseId, action: str) -> Response:
        """One decision form: approve, reject, compensate, escalate, call, assign,
        extend, rule. Refused, the case page shows why (rule and reason) beside it."""
        caller = acting(request, *DESK_ROLES)
        fields = await posted(request)
        action_id = fields.pop(ACTION_ID_FIELD, "")
        if action not in actions_of_role(caller.role):
            raise Forbidden(f"action: {action} is not open to {caller.role.value}")
        view = await pages.readable(case_id, caller)
        try:
            update, message = _decision(action, action_id, fields, caller, view)
            await gateway.decide(case_id, update, message, caller)
        except (RefusedDecisionError, BadForm) as refusal:
            return await pages.page(request, case_id, caller, refusal=refusal,
                                    refused_action=action, submitted=fields)  # fmt: skip
        except RefusedInputError as refusal:
            return await pages.page(request, case_id, caller, refusal=BadForm(str(refusal)),
                                    refused_action=action, submitted=fields)  # fmt: skip
        return RedirectResponse(f"{DESK_PATH}/cases/{case_id}?done={action}",
                                status_code=status.HTTP_303_SEE_OTHER)  # fmt: skip


def _decision(
    action: str, action_id: str, fields: dict[str, str], caller: Caller, view: CaseView
) -> tuple[UpdateHandler[Any], CaseMessage]:
    """The gateway's Update and message for a posted decision form; BadForm naming the
    field when a value cannot be taken."""
    if not action_id:
        raise BadForm("action_id: the form carries no action id; reload the page")
    who = {"action_id": action_id, "actor": caller.actor, "role": caller.role}
    values = blank_as_none(fields)
    currency = view.paid.currency
    try:
        match action:
            case "approve" | "reject":
                form = ReviewForm.model_validate(values)
                return CaseHandlers.decide, ReviewDecision(
                    **who, approve=action == "approve", **form.model_dump()
                )
            case "compensate":
                amount = amount_of(fields.get("amount", ""), currency, "amount")
                reason = ExplainedForm.model_validate({"reason": values.get("reason")}).reason
                offer = CompensationOffer(**who, amount=amount, reason=reason)
                return CaseHandlers.offer_compensation, offer
            case "escalate":
                reason = ExplainedForm.model_validate({"reason": values.get("reason")}).reason
                return CaseHandlers.escalate, EscalationRequest(**who, reason=reason)
            case "call":
                reason = ExplainedForm.model_validate({"reason": values.get("reason")}).reason
                return CaseHandlers.request_call, CallRequest(**who, purpose=reason)
            case "assign":
                agent = AssignForm.model_validate({"agent": values.get("agent")}).agent
                return CaseHandlers.assign, Assignment(**who, agent=agent)
            case "extend":
                extend = ExtendForm.model_validate(values)
                return CaseHandlers.extend_deadline, DeadlineExtension(
                    **who, deadline=extend.deadline, extend_by=timedelta(days=extend.days),
                    reason=extend.reason,
                )  # fmt: skip
            case "rule":
                refund = values.pop("refund", None)
                ruling = RulingForm.model_validate(values)
                return CaseHandlers.apply_ruling, ArbitrationRuling(
                    **who, favour_customer=ruling.favour_customer == "yes", reason=ruling.reason,
                    refund=amount_of(refund, currency, "refund") if refund else None,
                )  # fmt: skip
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "form"
        raise BadForm(f"{field}: {first['msg']}") from error
    raise Forbidden(f"action: the desk has no {action!r} form")
