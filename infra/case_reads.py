"""Reading a case: its view and ledger from the read model (PostgreSQL), readable after
Temporal's retention and with no worker running; live from the workflow when asked."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

import asyncpg
from pydantic import ValidationError
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from domain.queues import CaseFilter, CaseRow, CaseSort
from domain.state import CaseStatus
from domain.view import CaseLedger, CaseView, LedgerEvent
from infra.case_errors import CaseErasedError, WorkerUnavailableError, unknown_case
from infra.case_ids import case_kind
from infra.case_messages import case_handle
from infra.case_notes import CaseNotes
from infra.case_queues import CaseQueues
from infra.outages import DATABASE_DOWN
from workflows.case_handlers import CaseHandlers

# How long a live query waits for a worker to answer before the answer is 503.
_QUERY_WAIT = timedelta(seconds=5)
# A query nobody answers: our client gives up at _QUERY_WAIT (CANCELLED, "Timeout
# expired"), the server gives up waiting for a worker (DEADLINE_EXCEEDED), or it says at
# once that no worker polls the case's task queue (FAILED_PRECONDITION).
_NO_ANSWER = frozenset(
    {RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.FAILED_PRECONDITION}
)


class CaseReads:
    def __init__(
        self,
        client: Client,
        pool: asyncpg.Pool,
        task_queue: str,
        notes: CaseNotes,
        queues: CaseQueues,
    ) -> None:
        self._client = client
        self._pool = pool
        self._task_queue = task_queue
        self._notes = notes
        self._queues = queues

    async def erased(self, case_id: str) -> bool:
        """Asked before the workflow, which could not answer with its data key destroyed.
        PostgreSQL down, the read goes on: a case not erased still answers."""
        with contextlib.suppress(*DATABASE_DOWN):
            return bool(
                await self._pool.fetchval(
                    "SELECT destroyed_at IS NOT NULL FROM data_keys WHERE scope = $1", case_id
                )
            )
        return False

    async def status(self, case_id: str, *, fresh: bool = False) -> CaseView:
        """The case as of its last ledger step, from the read model: readable after
        Temporal's retention and with no worker running. `fresh` asks the workflow instead
        (a live query: a worker must answer). A case with no view stored yet (opened
        moments ago, or recorded before the view column) is asked live too, and so is
        every case while PostgreSQL cannot be reached, and a stored view the current
        CaseView cannot read."""
        case_kind(case_id)
        if await self.erased(case_id):
            raise CaseErasedError(
                f"{case_id} was erased on the customer's request (GDPR art. 17); "
                "its pseudonymised ledger remains",
                field="case_id",
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
            raise unknown_case(case_id)
        return await self.status(case_id, fresh=fresh)

    async def _live_view(self, case_id: str) -> CaseView:
        handle = case_handle(self._client, case_id)
        try:
            return await handle.query(CaseHandlers.state, rpc_timeout=_QUERY_WAIT)
        except RPCError as error:
            if error.status is RPCStatusCode.NOT_FOUND:
                raise unknown_case(case_id) from error
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
            raise unknown_case(case_id)
        return CaseLedger(
            case_id=case_id,
            disputed=rows[-1]["disputed"],
            events=[LedgerEvent.of(dict(row)) for row in rows],
            notes=await self._notes.of_case(case_id) if with_notes else [],
        )

    async def list_cases(self, *, status: str | None = None, limit: int = 50) -> list[CaseRow]:
        """The newest cases first, from the read model (no Temporal round trip)."""
        filters = [CaseFilter(statuses=frozenset({CaseStatus(status)}))] if status else []
        return (await self._queues.page(filters, sort=CaseSort.NEWEST, limit=limit)).rows
