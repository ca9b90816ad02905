"""The edge every way in shares (CLI today, HTTP API later): validated input in,
Temporal and the ledger behind, no business rules here."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import asyncpg
from opentelemetry import trace
from pydantic import BaseModel, ValidationError
from temporalio import workflow
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.converter import PayloadCodec
from temporalio.exceptions import ApplicationError, FailureError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from domain.analytics import Report, ReportFilters
from domain.case import (
    ArbitrationRuling,
    Assignment,
    CallRequest,
    CaseKind,
    CompensationOffer,
    Complaint,
    DeadlineExtension,
    Dispute,
    EscalationRequest,
    EvidenceSubmitted,
    InterceptRequested,
    OpenCaseRequest,
    ParcelDelivered,
    PaymentResolution,
    RefundConsent,
    RemedyChoice,
    ReviewDecision,
    ShippedBack,
    WarehouseScan,
    Withdrawal,
)
from domain.claim import CarrierAnswer, CarrierResponse
from domain.policy import future_request_refusal
from domain.policy_settings import PolicySettings
from domain.queues import CaseFilter, CaseRow, CaseSort
from domain.state import CaseMessage, CaseStatus, message_key
from domain.view import CaseLedger, CaseNote, CaseView, LedgerEvent
from infra.analytics import AnalyticsStore
from infra.blind_index import TrackingNumberIndex
from infra.business_metrics import BusinessFigures
from infra.case_notes import CaseNotes
from infra.case_queues import CaseQueues
from infra.codec import ErasedDataError, SealingCodec
from infra.grants import acting_as
from infra.health import Readiness, readiness
from infra.identity import Caller
from infra.kept_for_review import KeptForReview, Resolver, UnmatchedScan
from infra.outages import DATABASE_DOWN
from infra.policy_file import PolicyFile
from infra.privacy import ErasureReport, erase_customer
from workflows.carrier_claim import CLAIM_ID_PREFIX, CarrierClaim
from workflows.case_handlers import AUTHORITY_LIMIT, REFUSED, CaseHandlers
from workflows.case_inbox import NOT_APPLIED
from workflows.case_run import CaseRun
from workflows.damage_claim_case import DamageClaimCase
from workflows.exchange_case import ExchangeCase
from workflows.return_case import ReturnCase

WORKFLOW_OF_KIND: dict[CaseKind, type[CaseHandlers]] = {
    CaseKind.RETURN: ReturnCase,
    CaseKind.EXCHANGE: ExchangeCase,
    CaseKind.DAMAGE_CLAIM: DamageClaimCase,
}
# A signal the workflow type has no handler for is buffered by the SDK for ever, so news a
# kind cannot take is refused before it is sent; read from the classes, it cannot drift.
SIGNALS_OF_KIND: dict[CaseKind, frozenset[str]] = {
    kind: frozenset(
        name for name in workflow._Definition.must_from_class(cls).signals if name is not None
    )
    for kind, cls in WORKFLOW_OF_KIND.items()
}
# Likewise Updates: one a kind has no handler for would come back as the SDK's own words.
UPDATES_OF_KIND: dict[CaseKind, frozenset[str]] = {
    kind: frozenset(
        name for name in workflow._Definition.must_from_class(cls).updates if name is not None
    )
    for kind, cls in WORKFLOW_OF_KIND.items()
}
_OPENING_DECISION_WAIT_S = 10.0
# How long a live query waits for a worker to answer before the answer is 503.
_QUERY_WAIT = timedelta(seconds=5)
# A query nobody answers: our client gives up at _QUERY_WAIT (CANCELLED, "Timeout
# expired"), the server gives up waiting for a worker (DEADLINE_EXCEEDED), or it says at
# once that no worker polls the case's task queue (FAILED_PRECONDITION).
_NO_ANSWER = frozenset(
    {RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.FAILED_PRECONDITION}
)
# What refused_inputs keeps of one refused input: enough for a person to act on, and a
# bound on what a caller can make us store (the API's body limit is larger).
MAX_KEPT_CHARS = 64 * 1024


# What the ways in may send to a case, by name: fire-and-forget news (signals) and
# decisions that need an answer (updates), each with the model that validates it.
SIGNALS: dict[str, type[BaseModel]] = {
    "shipped_back": ShippedBack,
    "warehouse_scan": WarehouseScan,
    "evidence_submitted": EvidenceSubmitted,
    "complaint": Complaint,
    "dispute": Dispute,
    "parcel_delivered": ParcelDelivered,
    "intercept_requested": InterceptRequested,
    "withdraw": Withdrawal,
}
UPDATES: dict[str, type[CaseMessage]] = {
    "decide": ReviewDecision,
    "offer_compensation": CompensationOffer,
    "escalate": EscalationRequest,
    "request_call": CallRequest,
    "assign": Assignment,
    "extend_deadline": DeadlineExtension,
    "choose_remedy": RemedyChoice,
    "consent_to_refund": RefundConsent,
    "apply_ruling": ArbitrationRuling,
    "resolve_declined_payment": PaymentResolution,
}

# A no-op unless the API traces (infra/tracing.py): bench/breakdown.py reads these.
_STAGES = trace.get_tracer("aftersales.gateway")


class UnknownCaseError(LookupError):
    pass


class CaseErasedError(UnknownCaseError):
    """The case's customer was erased (GDPR art. 17): its payloads cannot be read any
    more; its pseudonymised ledger rows remain in PostgreSQL."""


class WorkerUnavailableError(Exception):
    """Temporal answers, but no worker answered a live query of the case."""

    def __init__(self, task_queue: str) -> None:
        super().__init__(
            f"no case worker answered on task queue {task_queue!r}: the case worker "
            "(worker.py) is down or busy; read the case without ?fresh=true, or send the "
            "request again once a worker runs"
        )


class RefusedInputError(ValueError):
    """Input refused at the edge; the message names the field and the rule."""


class ReceiptRefusedError(RefusedInputError):
    """An opening request refused at receipt (R1); `field` is None for the request as a
    whole."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


class RefusedDecisionError(ValueError):
    """The case refused a decision: its validator, or the case once the decision's turn
    came (its kind is then in the ledger's `message_ignored` step). `rule` is the
    refusal's typed rule, None where no rule of domain.md refuses (the message says why);
    the message names the field."""

    def __init__(self, message: str, *, rule: str | None = None):
        super().__init__(message)
        self.rule = rule


# The Update failures that carry a typed refusal (rule and kind) in their details.
TYPED_REFUSALS = (REFUSED, NOT_APPLIED, AUTHORITY_LIMIT)


def refused_decision(error: WorkflowUpdateFailedError) -> RefusedDecisionError:
    """The Update's failure as the API hears it: the message and the case's typed rule."""
    cause = error.cause
    if not isinstance(cause, FailureError):
        return RefusedDecisionError(str(error))
    # The case's typed refusal (workflows/case_inbox.py `refusal_details`).
    if isinstance(cause, ApplicationError) and cause.type in TYPED_REFUSALS and cause.details:
        return RefusedDecisionError(cause.message, rule=cause.details[0]["rule"])
    # Any other failure names no rule: str() of a Temporal failure puts its Python type
    # in front ("ValueError: ..."), which says nothing to the caller.
    return RefusedDecisionError(cause.message)


@dataclass(frozen=True)
class OpenedCase:
    view: CaseView
    created: bool


def describe_validation_error(error: ValidationError) -> str:
    return describe_errors(error.errors())


def describe_errors(errors: Sequence[Mapping[str, Any]]) -> str:
    """Pydantic's errors as one line, each naming its field."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in errors)


class CaseGateway:
    def __init__(
        self, client: Client, pool: asyncpg.Pool, task_queue: str, policy: PolicyFile
    ) -> None:
        self._client = client
        self._pool = pool
        self._task_queue = task_queue
        self._policy = policy
        # R24: analytics reads and writes PostgreSQL only; no workflow is involved.
        self.analytics = AnalyticsStore(pool)
        # /metrics' business figures, read from the read model at scrape time.
        self.figures = BusinessFigures(pool)
        self._codec = _sealing_codec(client)
        self._tracking = TrackingNumberIndex(self._codec.ring)
        # The queues, what is kept for a person, and notes: PostgreSQL only, likewise.
        self.queues = CaseQueues(pool, self._tracking)
        self.kept = KeptForReview(pool)
        self.notes = CaseNotes(pool)

    async def readiness(self) -> Readiness:
        """PostgreSQL and Temporal reachable, migrations applied (/readyz)."""
        return await readiness(self._pool, self._client)

    async def report(self, filters: ReportFilters) -> Report:
        """R24's report now; SLA deadlines as the policy file's defaults set them."""
        return await self.analytics.report(
            filters, self._policy.resolve("general"), datetime.now(UTC)
        )

    @property
    def payload_codec(self) -> PayloadCodec:
        """The client's codec: the codec server (api/codec.py) seals and opens with it."""
        codec = self._client.data_converter.payload_codec
        if codec is None:
            raise RuntimeError("the Temporal client has no payload codec (infra/data_converter)")
        return codec

    async def accept_case(self, request: OpenCaseRequest) -> bool:
        """R2: idempotent; True if this call opened the case. The request is written to
        PostgreSQL first, then its workflow is started: if Temporal cannot be reached, the
        request is kept and the caller's retry starts the case, from the request as it was
        first stored (its requested_at is when the customer asked, and its received_at,
        set by the HTTP API, our first receipt: R1 judges one of them, domain.policy)."""
        # The case's data key is made now and stored with its request, in one statement
        # (one commit), so starting the case seals without a write of its own.
        key = self._codec.new_case_key(request.case_id)
        with _STAGES.start_as_current_span("request and data key insert"):
            [row] = await self._pool.fetch(
                """WITH request AS (
                       INSERT INTO case_requests (case_id, request_id, request)
                       VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING true),
                     data_key AS (
                       INSERT INTO data_keys (scope, master_key_id, wrapped_key)
                       VALUES ($4, $5, $6) ON CONFLICT (scope) DO NOTHING RETURNING true)
                   SELECT EXISTS (SELECT FROM request) AS created,
                          EXISTS (SELECT FROM data_key) AS keyed""",
                request.case_id,
                request.request_id,
                request.model_dump(mode="json"),
                key.scope,
                key.master_key_id,
                key.wrapped,
            )
        created = row["created"]
        if row["keyed"]:
            self._codec.data_key_stored(key)
        if not created:
            # An erased customer's case answers 410 before its stored request is compared:
            # a refusal would keep the re-sent body, the customer's real id in it.
            if await self._erased(request.case_id):
                raise _erased_case(request.case_id)
            request = await self._stored_request(request)
        # Pinned here, once: the case keeps this policy for life.
        run = CaseRun(request=request, policy=self.policy_for(request))
        # Already started, or closed: the request reached its case either way.
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await self._start(run)
        return bool(created)

    async def _start(self, run: CaseRun) -> None:
        request = run.request
        try:
            await self._client.start_workflow(
                WORKFLOW_OF_KIND[request.kind].__name__,
                run,
                id=request.case_id,
                task_queue=self._task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                # A closed case keeps its id: reopening the same request shows that case.
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=_static_summary(request),
                static_details=_static_details(run),
            )
        except ErasedDataError as error:
            # Erased between the check above and the start: its key is gone.
            raise _erased_case(request.case_id) from error

    def policy_for(self, request: OpenCaseRequest) -> PolicySettings:
        """The policy a case opened from `request` would pin now."""
        return self._policy.resolve(request.category, request.carrier)

    def received_now(self, request: OpenCaseRequest) -> OpenCaseRequest:
        """The request as every way in receives it: stamped with our receipt, so R1 never
        rests on the caller's clock alone. ReceiptRefusedError for a caller who sets the
        receipt, or a requested_at ahead of our clock beyond the policy's skew (R1)."""
        if request.received_at is not None:
            raise ReceiptRefusedError(
                "received_at", "set by us at receipt, never by the caller (R1)"
            )
        received = request.model_copy(update={"received_at": datetime.now(UTC)})
        if refusal := future_request_refusal(received, self.policy_for(received)):
            raise ReceiptRefusedError(None, refusal.text)
        return received

    async def _stored_request(self, again: OpenCaseRequest) -> OpenCaseRequest:
        """The stored request `again` repeats, or RefusedInputError if its request id
        already opened another case. Its own statement, so it sees a row that a concurrent
        request committed while this one's insert waited on it."""
        [row] = await self._pool.fetch(
            """SELECT case_id, request::text FROM case_requests
               WHERE case_id = $1 OR (order_id, line_id, request_id) = ($2, $3, $4)
               ORDER BY case_id = $1 DESC LIMIT 1""",
            again.case_id,
            again.order_id,
            again.line_id,
            again.request_id,
        )
        if row["case_id"] != again.case_id:
            raise RefusedInputError(
                f"request_id: {again.request_id} already opened case {row['case_id']} for "
                f"order {again.order_id} line {again.line_id}, so it cannot also open a "
                f"{again.kind.value} case (R2: one request, one case)"
            )
        stored = OpenCaseRequest.model_validate_json(row["request"])
        if _differs(stored, again):
            raise RefusedInputError(
                f"request_id: {again.request_id} already opened case {again.case_id} "
                "with different details (R2: one request, one case)"
            )
        return stored

    async def open_case(self, request: OpenCaseRequest) -> OpenedCase:
        """`accept_case`, then the case once its opening decision is made (the CLI)."""
        created = await self.accept_case(request)
        handle = self._client.get_workflow_handle_for(ReturnCase.run, request.case_id)
        return OpenedCase(view=await self._first_view(handle), created=created)

    async def _first_view(self, handle: WorkflowHandle[ReturnCase, Any]) -> CaseView:
        """The case once its opening decision (accepted or refused, R1) is made, so callers
        learn it at once; after a few seconds, the case as it is (the case is durable)."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + _OPENING_DECISION_WAIT_S
        while True:
            try:
                view = await handle.query(ReturnCase.state)
            except RPCError:
                # A query needs the run's first workflow task, which may not have run yet.
                if loop.time() > give_up + _OPENING_DECISION_WAIT_S:
                    raise
            else:
                if view.status is not CaseStatus.OPENED or loop.time() > give_up:
                    return view
            await asyncio.sleep(0.05)

    async def status(self, case_id: str, *, fresh: bool = False) -> CaseView:
        """The case as of its last ledger step, from the read model: readable after
        Temporal's retention and with no worker running. `fresh` asks the workflow instead
        (a live query: a worker must answer). A case with no view stored yet (opened
        moments ago, or recorded before the view column) is asked live too, and so is
        every case while PostgreSQL cannot be reached, and a stored view the current
        CaseView cannot read."""
        _case_kind(case_id)
        if await self._erased(case_id):
            raise CaseErasedError(
                f"case_id: {case_id} was erased on the customer's request (GDPR art. 17); "
                "its pseudonymised ledger remains"
            )
        if not fresh:
            with contextlib.suppress(*DATABASE_DOWN):
                stored = await self._pool.fetchval(
                    "SELECT case_view FROM cases WHERE case_id = $1", case_id
                )
                if stored is not None:
                    # A view stored by older code that the current model no longer reads
                    # is asked live instead: the workflow answers in today's shape.
                    with contextlib.suppress(ValidationError):
                        return CaseView.model_validate(stored)
        return await self._live_view(case_id)

    async def arbitration_view(self, case_id: str, *, fresh: bool = False) -> CaseView:
        """The case as the arbiter may read it (R19): a case in arbitration. Any other is
        UnknownCaseError worded as for a case that does not exist, so the arbiter learns
        nothing of cases that are not theirs to rule on: one read of the read model
        decides, alike (and in about the same time) for an unknown case, an erased one
        and another that was never disputed. An erased case keeps whether it was disputed
        there (`cases.case_view`); it then answers 410 as for staff."""
        if not await self._pool.fetchval(
            "SELECT (case_view ->> 'disputed')::boolean FROM cases WHERE case_id = $1", case_id
        ):
            raise _unknown_case(case_id)
        return await self.status(case_id, fresh=fresh)

    async def _live_view(self, case_id: str) -> CaseView:
        handle = self._client.get_workflow_handle_for(ReturnCase.run, case_id)
        try:
            return await handle.query(ReturnCase.state, rpc_timeout=_QUERY_WAIT)
        except RPCError as error:
            if error.status is RPCStatusCode.NOT_FOUND:
                raise _unknown_case(case_id) from error
            if error.status in _NO_ANSWER and await self._temporal_answers(handle):
                raise WorkerUnavailableError(self._task_queue) from error
            raise

    async def _temporal_answers(self, handle: WorkflowHandle[Any, Any]) -> bool:
        """Whether Temporal itself answers: a query that timed out with Temporal up went
        unanswered by the worker, which is the outage to name."""
        try:
            await handle.describe(rpc_timeout=_QUERY_WAIT)
        except RPCError:
            return False
        return True

    async def add_note(self, case_id: str, note_id: str, body: str, author: Caller) -> CaseNote:
        """An internal note (infra/case_notes.py). An erased case takes none: erasure
        removed its free text once, and a note written after it (it may name the
        customer) would stay in plaintext with no erasure left to come."""
        if await self._erased(case_id):
            raise _erased_case(case_id)
        return await self.notes.add(case_id, note_id, body, author)

    async def _erased(self, case_id: str) -> bool:
        """Asked before the workflow, which could not answer with its data key destroyed.
        PostgreSQL down, the read goes on: a case not erased still answers."""
        with contextlib.suppress(*DATABASE_DOWN):
            return bool(
                await self._pool.fetchval(
                    "SELECT destroyed_at IS NOT NULL FROM data_keys WHERE scope = $1", case_id
                )
            )
        return False

    async def shipped_back(self, case_id: str, notice: ShippedBack) -> None:
        await self.tell(case_id, "shipped_back", notice)

    async def tell(self, case_id: str, signal: str, message: BaseModel) -> None:
        """Fire-and-forget news for a case (a signal); durable once this returns. News its
        kind has no use for is refused (RefusedInputError), not left unread."""
        kind = _case_kind(case_id)
        if signal not in SIGNALS_OF_KIND[kind]:
            raise RefusedInputError(
                f"{signal}: a {kind.value} case does not take {signal}; it takes "
                f"{', '.join(sorted(SIGNALS_OF_KIND[kind]))}"
            )
        handle = self._client.get_workflow_handle(case_id)
        try:
            await handle.signal(signal, message)
        except ErasedDataError as error:
            raise _erased_case(case_id) from error
        except RPCError as error:
            if error.status is RPCStatusCode.NOT_FOUND:
                raise UnknownCaseError(f"case_id: no open case {case_id!r}") from error
            raise
        if isinstance(message, ShippedBack):
            # Searchable by the desk without being stored (docs/privacy.md): its keyed hash.
            await self._pool.execute(
                """INSERT INTO case_tracking_numbers (tracking_hash, case_id) VALUES ($1, $2)
                   ON CONFLICT DO NOTHING""",
                self._tracking.token(message.tracking_number),
                case_id,
            )

    async def carrier_response(
        self, claim_id: str, response: CarrierResponse, caller: Caller
    ) -> None:
        """R15: the carrier's answer to a claim, from a client made for that claim's
        carrier; the claim's ledger records which client answered (R23). An id that names
        no carrier claim (a case, a survey: their workflows would buffer the signal unread
        for ever), a claim against another carrier, or a claim past its late-answer window
        cannot take it: the answer is kept for a person and UnknownCaseError says so, in
        the same words for another carrier's claim as for none (claim ids follow case ids:
        a carrier must not learn which claims its competitors have)."""
        if not _is_carrier_claim(claim_id):
            await self._keep_carrier_response(
                claim_id, response, f"{claim_id!r} is not a carrier claim's id (R15)"
            )
        unknown = f"claim {claim_id!r} is unknown or closed past its late-answer window (R15)"
        carrier = await self._pool.fetchval(
            # The claim's own row once filed; until then the damage case's request, which
            # is stored before the case (and so its claim) starts.
            """SELECT coalesce((SELECT carrier FROM carrier_claims WHERE claim_id = $1),
                               (SELECT request->>'carrier' FROM case_requests
                                WHERE case_id = $2))""",
            claim_id,
            claim_id.removeprefix(CLAIM_ID_PREFIX),
        )
        if carrier is None:
            await self._keep_carrier_response(claim_id, response, unknown)
        if carrier not in caller.carriers:
            await self._keep_carrier_response(
                claim_id, response, unknown,
                kept_because=f"{caller.actor} answers for {sorted(caller.carriers)}, the "
                f"claim is against {carrier}",
            )  # fmt: skip
        answer = CarrierAnswer(**dict(response), answered_by=caller.actor)
        handle = self._client.get_workflow_handle_for(CarrierClaim.run, claim_id)
        try:
            await handle.signal(CarrierClaim.carrier_response, answer)
        except RPCError as error:
            if error.status is not RPCStatusCode.NOT_FOUND:
                raise
            await self._keep_carrier_response(claim_id, response, unknown, cause=error)

    async def _keep_carrier_response(
        self,
        claim_id: str,
        response: CarrierResponse,
        problem: str,
        cause: BaseException | None = None,
        kept_because: str | None = None,
    ) -> NoReturn:
        """`kept_because`: what the person who looks at the kept answer is told, where the
        caller is told less (`problem`)."""
        problem += "; the answer is kept for a person"
        await self.record_refused_input(
            source="carrier",
            operation=f"carrier_response {claim_id}",
            payload=response.model_dump_json(),
            errors=f"{problem} ({kept_because})" if kept_because else problem,
        )
        raise UnknownCaseError(f"claim_id: {problem}") from cause

    async def decide(
        self, case_id: str, update: str, decision: CaseMessage, caller: Caller
    ) -> CaseView:
        """A decision that needs an answer (an Update), sent with a grant for the proven
        `caller` (infra/grants.py; the client must carry a GrantingInterceptor): the case
        after it was applied, or RefusedDecisionError with the validator's reason or the
        case's typed refusal. The Update's id is the update's name, the action id and the
        decision's fingerprint: the server answers a retry of one Update with its first
        outcome, and never hands another decision (another update, or other fields under
        the same action id) that outcome; the case itself answers a retry that comes as a
        new Update alike, and refuses another decision under a taken id
        (workflows/case_inbox.py)."""
        kind = _case_kind(case_id)
        if update not in UPDATES_OF_KIND[kind]:
            raise RefusedInputError(
                f"{update}: a {kind.value} case does not take {update}; it takes "
                f"{', '.join(sorted(UPDATES_OF_KIND[kind]))}"
            )
        handle = self._client.get_workflow_handle(case_id)
        try:
            with acting_as(caller):
                view: CaseView = await handle.execute_update(
                    update, decision, id=f"{update}:{message_key(decision)}", result_type=CaseView
                )
        except ErasedDataError as error:
            raise _erased_case(case_id) from error
        except WorkflowUpdateFailedError as error:
            raise refused_decision(error) from error
        except RPCError as error:
            if error.status is RPCStatusCode.NOT_FOUND:
                raise UnknownCaseError(f"case_id: no open case {case_id!r}") from error
            raise
        finally:
            # Counted anew even after a refusal: one may move the case (R17's goes to a
            # supervisor, R18).
            self.queues.changed()
        return view

    async def erase_customer(self, customer_id: str, *, actor: str, role: str) -> ErasureReport:
        """GDPR art. 17 (infra/privacy.py); CustomerHasOpenCasesError while a case runs.
        This process (the codec server's) stops opening the cases' payloads at once; other
        processes when their cached keys are next checked (infra/data_keys.py)."""
        report = await erase_customer(self._client, self._pool, customer_id, actor=actor, role=role)
        codec = self.payload_codec
        if isinstance(codec, SealingCodec):
            codec.forget(report.cases)
        return report

    async def scan(self, barcode: str, scan: WarehouseScan) -> None:
        [problem] = await self.scan_batch([(barcode, scan)])
        if problem is not None:
            raise problem

    async def scan_batch(
        self, scans: list[tuple[str, WarehouseScan]]
    ) -> list[UnknownCaseError | None]:
        """R26: the barcode on a return label is its case id. Each scan is signalled to its
        case and then kept in `scans`; one that matches no open case is kept in
        unmatched_scans for a person, and its place in the answer says why. A barcode's
        scans are signalled one after another in the order sent (a dock scan before its
        inspection starts R13's clock from the dock); different barcodes go concurrently."""
        places_of_barcode: dict[str, list[int]] = {}
        for place, (barcode, _) in enumerate(scans):
            places_of_barcode.setdefault(barcode, []).append(place)
        problems: list[UnknownCaseError | None] = [None] * len(scans)

        async def in_order(places: list[int]) -> None:
            for place in places:
                problems[place] = await self._signal_scan(*scans[place])

        await asyncio.gather(*(in_order(places) for places in places_of_barcode.values()))
        with _STAGES.start_as_current_span("scans insert"):
            await self._pool.executemany(
                """INSERT INTO scans (scan_id, case_id, event, station, grade, photos, scanned_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (scan_id) DO NOTHING""",
                [
                    _scan_row(barcode, scan)
                    for (barcode, scan), problem in zip(scans, problems, strict=True)
                    if problem is None
                ],
            )
        return problems

    async def _deliver_scan(self, barcode: str, scan: WarehouseScan) -> str | None:
        """The scan signalled to the case `barcode` names (its scan id makes a repeat
        change nothing, R26), or why it could not be."""
        # A barcode naming another workflow (a survey, a carrier claim) would be signalled
        # and never read: only a case's return label reaches a workflow.
        if _kind_of(barcode) is None:
            return f"barcode {barcode!r} matches no open case"
        handle = self._client.get_workflow_handle_for(ReturnCase.run, barcode)
        try:
            await handle.signal(ReturnCase.warehouse_scan, scan)
        except ErasedDataError:
            # Nothing can reach a case whose customer was erased; a person decides.
            return f"barcode {barcode!r} names a case erased on its customer's request"
        except RPCError as error:
            if error.status is not RPCStatusCode.NOT_FOUND:
                raise
            return f"barcode {barcode!r} matches no open case"
        return None

    async def _signal_scan(self, barcode: str, scan: WarehouseScan) -> UnknownCaseError | None:
        problem = await self._deliver_scan(barcode, scan)
        if problem is None:
            return None
        await self._pool.execute(
            """INSERT INTO unmatched_scans (scan_id, barcode, payload, problem)
               VALUES ($1, $2, $3, $4) ON CONFLICT (scan_id) DO NOTHING""",
            scan.scan_id,
            barcode,
            scan.model_dump(mode="json"),
            problem,
        )
        return UnknownCaseError(f"barcode: {problem}; the scan is kept for review (R26)")

    async def attach_scan(self, scan_id: str, case_id: str, resolver: Resolver) -> UnmatchedScan:
        """R26: a scan kept for a person, delivered to the case a person says it belongs
        to, by the scan's own path and id: sent twice (a double submit, a retry after a
        lost answer), the case applies it once. Recorded with who, when and why, in the
        transaction that holds the scan's row, so two people cannot attach it to two
        cases. UnknownCaseError if that case cannot take it (the scan stays kept)."""
        _case_kind(case_id)
        async with self._pool.acquire() as conn, conn.transaction():
            kept = await self.kept.claim_scan(conn, scan_id, case_id, resolver)
            if kept is None:  # attached there by this person already
                return await self.kept.unmatched_scan(scan_id)
            if problem := await self._deliver_scan(case_id, kept.scan):
                raise UnknownCaseError(f"case_id: {problem}; the scan stays kept (R26)")
            await conn.execute(
                """INSERT INTO scans (scan_id, case_id, event, station, grade, photos,
                                      scanned_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (scan_id) DO NOTHING""",
                *_scan_row(case_id, kept.scan),
            )
            attached = await self.kept.record_attached(conn, scan_id, case_id, resolver)
        self.queues.changed()
        return attached

    async def ledger(self, case_id: str, *, with_notes: bool = True) -> CaseLedger:
        """The case's audit trail (R23) from case_events, as staff may read it
        (domain/view.py LedgerEvent), and its internal notes if `with_notes`. An erased
        case's trail stays readable: it is pseudonymised and its free text removed
        (docs/privacy.md)."""
        rows = await self._pool.fetch(
            """SELECT e.*, coalesce((c.case_view ->> 'disputed')::boolean, false) AS disputed
               FROM cases c JOIN case_events e USING (case_id)
               WHERE c.case_id = $1 ORDER BY e.seq""",
            case_id,
        )
        if not rows:
            raise _unknown_case(case_id)
        return CaseLedger(
            case_id=case_id,
            disputed=rows[-1]["disputed"],
            events=[LedgerEvent.of(dict(row)) for row in rows],
            notes=await self.notes.of_case(case_id) if with_notes else [],
        )

    async def list_cases(self, *, status: str | None = None, limit: int = 50) -> list[CaseRow]:
        """The newest cases first, from the read model (no Temporal round trip)."""
        filters = [CaseFilter(statuses=frozenset({CaseStatus(status)}))] if status else []
        return (await self.queues.page(filters, sort=CaseSort.NEWEST, limit=limit)).rows

    async def record_refused_input(
        self, *, source: str, operation: str, payload: str, errors: str
    ) -> None:
        """Bad input loses nothing a person needs: what was refused is kept with the
        reason, each cut to MAX_KEPT_CHARS (a note says how much more there was)."""
        await self._pool.execute(
            """INSERT INTO refused_inputs (source, operation, payload, errors)
               VALUES ($1, $2, $3, $4)""",
            source,
            _storable(operation),
            _storable(payload),
            {"message": _storable(errors)},
        )

    async def has_refused_input(self, *, source: str) -> bool:
        """Whether any refused input from `source` is kept (the demo keeps one, once)."""
        return bool(
            await self._pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM refused_inputs WHERE source = $1)", source
            )
        )


def _storable(text: str) -> str:
    """Refused input may carry NUL (a raw byte in a broken JSON body), which PostgreSQL
    text and jsonb refuse: it is kept escaped instead."""
    escaped = text.replace("\x00", "\\x00")
    if len(escaped) <= MAX_KEPT_CHARS:
        return escaped
    return (
        f"{escaped[:MAX_KEPT_CHARS]}[... {len(escaped) - MAX_KEPT_CHARS} more characters not kept]"
    )


def _sealing_codec(client: Client) -> SealingCodec:
    codec = client.data_converter.payload_codec
    if not isinstance(codec, SealingCodec):
        raise RuntimeError("the Temporal client does not seal payloads (infra/data_converter)")
    return codec


def _is_carrier_claim(workflow_id: str) -> bool:
    """A carrier claim's id is `claim-` and the id of the damage claim case it serves."""
    case_id = workflow_id.removeprefix(CLAIM_ID_PREFIX)
    return case_id != workflow_id and _kind_of(case_id) is CaseKind.DAMAGE_CLAIM


def _case_kind(case_id: str) -> CaseKind:
    """The kind of the case `case_id` names; UnknownCaseError for any other workflow's id
    (surveys and carrier claims share the namespace, not the cases' messages)."""
    kind = _kind_of(case_id)
    if kind is None:
        raise _unknown_case(case_id)
    return kind


def _unknown_case(case_id: str) -> UnknownCaseError:
    return UnknownCaseError(f"case_id: no case {case_id!r}")


def _erased_case(case_id: str) -> CaseErasedError:
    return CaseErasedError(
        f"case_id: {case_id} was erased on the customer's request (GDPR art. 17): it takes "
        "no more messages; its pseudonymised ledger remains"
    )


def _kind_of(case_id: str) -> CaseKind | None:
    """The case kind a case id (a return label's barcode) names, or None for any other id."""
    return next((k for k in CaseKind if case_id.startswith(f"{k.value}-")), None)


def _scan_row(barcode: str, scan: WarehouseScan) -> tuple[object, ...]:
    grade = scan.grade.value if scan.grade else None
    return (scan.scan_id, barcode, scan.event.value, scan.station, grade, scan.photos,
            scan.scanned_at)  # fmt: skip


def _static_summary(request: OpenCaseRequest) -> str:
    return (
        f"{request.kind.value} · {request.reason.value} · order {request.order_id} "
        f"line {request.line_id} · SKU {request.sku}"
    )


def _static_details(run: CaseRun) -> str:
    request = run.request
    return (
        f"- Request: `{request.request_id}` via {request.channel.value}\n"
        f"- Paid: {request.paid}\n"
        f"- Delivered: {_when(request.delivered_at)}\n"
        f"- Requested: {request.requested_at:%Y-%m-%d %H:%M} UTC\n"
        f"- Policy: {run.policy.version}"
    )


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "not delivered"


def _differs(opened: OpenCaseRequest, again: OpenCaseRequest) -> bool:
    # requested_at defaults to "now" at the edges, so a retry legitimately differs there;
    # received_at is our own receipt of each copy.
    ignore = {"requested_at", "received_at"}
    return opened.model_dump(exclude=ignore) != again.model_dump(exclude=ignore)
