"""Opening a case: the request stored first (R2: one request, one case), then its
workflow started with the policy it keeps for life, stamped with our receipt (R1)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from opentelemetry import trace
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from activities.policy_file import PolicyFile
from domain.case import OpenCaseRequest
from domain.policy import future_request_refusal
from domain.policy_settings import PolicySettings
from domain.rules import Rule
from domain.state import CaseStatus
from domain.view import CaseView
from infra.case_errors import (
    ReceiptRefusedError,
    RefusedInputError,
    erased_case,
    field_and_words,
)
from infra.case_messages import WORKFLOW_OF_KIND, CaseHandle, case_handle
from infra.case_reads import CaseReads
from infra.security.codec import ErasedDataError, SealingCodec
from workflows.case_handlers import CaseHandlers
from workflows.case_run import CaseRun

_OPENING_DECISION_WAIT_S = 10.0
_RESOLVED_POLICIES = 1024
# A no-op unless the API traces (infra/tracing.py): bench/breakdown.py reads these.
_STAGES = trace.get_tracer("aftersales.intake")


@dataclass(frozen=True)
class OpenedCase:
    view: CaseView
    created: bool


class CaseIntake:
    def __init__(
        self,
        client: Client,
        pool: asyncpg.Pool,
        task_queue: str,
        policy: PolicyFile,
        reads: CaseReads,
        codec: SealingCodec,
    ) -> None:
        self._client = client
        self._codec = codec
        self._pool = pool
        self._task_queue = task_queue
        self._reads = reads
        # Resolving validates a PolicySettings (frozen), twice per opening; the file is
        # read once, so the same category and carrier resolve alike. Bounded: both are the
        # caller's words.
        self._resolved = functools.lru_cache(maxsize=_RESOLVED_POLICIES)(policy.resolve)

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
            if await self._reads.erased(request.case_id):
                raise erased_case(request.case_id)
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
                WORKFLOW_OF_KIND[request.kind].run,
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
            raise erased_case(request.case_id) from error

    def policy_for(self, request: OpenCaseRequest) -> PolicySettings:
        """The policy a case opened from `request` would pin now."""
        return self._resolved(request.category, request.carrier)

    def received_now(self, request: OpenCaseRequest) -> OpenCaseRequest:
        """The request as every way in receives it: stamped with our receipt, so R1 never
        rests on the caller's clock alone. ReceiptRefusedError for a caller who sets the
        receipt, or a requested_at ahead of our clock beyond the policy's skew (R1)."""
        if request.received_at is not None:
            raise ReceiptRefusedError(
                "set by us at receipt, never by the caller (R1)", field="received_at", rule=Rule.R1
            )
        received = request.model_copy(update={"received_at": datetime.now(UTC)})
        if refusal := future_request_refusal(received, self.policy_for(received)):
            field, words = field_and_words(refusal.text)
            raise ReceiptRefusedError(words, field=field, rule=refusal.rule)
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
                f"{again.request_id} already opened case {row['case_id']} for order "
                f"{again.order_id} line {again.line_id}, so it cannot also open a "
                f"{again.kind.value} case (R2: one request, one case)",
                field="request_id",
                rule=Rule.R2,
            )
        stored = OpenCaseRequest.model_validate_json(row["request"])
        if _differs(stored, again):
            raise RefusedInputError(
                f"{again.request_id} already opened case {again.case_id} with different "
                "details (R2: one request, one case)",
                field="request_id",
                rule=Rule.R2,
            )
        return stored

    async def open_case(self, request: OpenCaseRequest) -> OpenedCase:
        """`accept_case`, then the case once its opening decision is made (the CLI)."""
        created = await self.accept_case(request)
        handle = case_handle(self._client, request.case_id)
        return OpenedCase(view=await self._first_view(handle), created=created)

    async def _first_view(self, handle: CaseHandle) -> CaseView:
        """The case once its opening decision (accepted or refused, R1) is made, so callers
        learn it at once; after a few seconds, the case as it is (the case is durable)."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + _OPENING_DECISION_WAIT_S
        while True:
            try:
                view = await handle.query(CaseHandlers.state)
            except RPCError:
                # A query needs the run's first workflow task, which may not have run yet.
                if loop.time() > give_up + _OPENING_DECISION_WAIT_S:
                    raise
            else:
                if view.status is not CaseStatus.OPENED or loop.time() > give_up:
                    return view
            await asyncio.sleep(0.05)


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
