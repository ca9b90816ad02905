"""Messages for a running case and its carrier claim: news (signals) and decisions that
need an answer (Updates, sent with a grant for the proven caller), each named by its
handler (infra/case_messages.py)."""

from __future__ import annotations

from typing import NoReturn, TypeVar

import asyncpg
from pydantic import BaseModel
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from domain.case import CaseKind, ShippedBack
from domain.claim import CarrierAnswer, CarrierResponse
from domain.rules import Rule
from domain.state import CaseMessage, message_key
from domain.view import CaseView
from infra.case_errors import (
    RefusedInputError,
    UnknownCaseError,
    erased_case,
    refused_decision,
    unknown_case,
)
from infra.case_ids import case_kind, claimed_case
from infra.case_messages import (
    SIGNALS_OF_KIND,
    UPDATES_OF_KIND,
    SignalHandler,
    UpdateHandler,
    case_handle,
    name_of,
    takes,
)
from infra.case_queues import CaseQueues
from infra.refused_inputs import RefusedInputs
from infra.security.blind_index import TrackingNumberIndex
from infra.security.codec import ErasedDataError
from infra.security.grants import acting_as
from infra.security.identity import Caller
from workflows.carrier_claim import CarrierClaim
from workflows.case_handlers import ItemBackHandlers

News = TypeVar("News", bound=BaseModel)
Decision = TypeVar("Decision", bound=CaseMessage)


class CaseMessaging:
    def __init__(
        self,
        client: Client,
        pool: asyncpg.Pool,
        tracking: TrackingNumberIndex,
        queues: CaseQueues,
        refused: RefusedInputs,
    ) -> None:
        self._client = client
        self._pool = pool
        self._tracking = tracking
        self._queues = queues
        self._refused = refused

    async def shipped_back(self, case_id: str, notice: ShippedBack) -> None:
        await self.tell(case_id, ItemBackHandlers.shipped_back, notice)

    async def tell(self, case_id: str, signal: SignalHandler[News], message: News) -> None:
        """Fire-and-forget news for a case (a signal); durable once this returns. News its
        kind has no use for is refused (RefusedInputError), not left unread."""
        kind = case_kind(case_id)
        if not takes(kind, signal):
            raise _not_taken(kind, name_of(signal), SIGNALS_OF_KIND[kind])
        handle = case_handle(self._client, case_id)
        try:
            await handle.signal(signal, message)
        except ErasedDataError as error:
            raise erased_case(case_id) from error
        except RPCError as error:
            if error.status is RPCStatusCode.NOT_FOUND:
                raise unknown_case(case_id, open_only=True) from error
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
        case_id = claimed_case(claim_id)
        if case_id is None:
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
            case_id,
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
        await self._refused.record(
            source="carrier",
            operation=f"carrier_response {claim_id}",
            payload=response.model_dump_json(),
            errors=f"{problem} ({kept_because})" if kept_because else problem,
        )
        raise UnknownCaseError(problem, field="claim_id", rule=Rule.R15) from cause

    async def decide(
        self, case_id: str, update: UpdateHandler[Decision], decision: Decision, caller: Caller
    ) -> CaseView:
        """A decision that needs an answer (an Update), sent with a grant for the proven
        `caller` (infra/security/grants.py; the client must carry a GrantingInterceptor): the case
        after it was applied, or RefusedDecisionError with the validator's reason or the
        case's typed refusal. The Update's id is the update's name, the action id and the
        decision's fingerprint: the server answers a retry of one Update with its first
        outcome, and never hands another decision (another update, or other fields under
        the same action id) that outcome; the case itself answers a retry that comes as a
        new Update alike, and refuses another decision under a taken id
        (workflows/case_inbox.py)."""
        kind = case_kind(case_id)
        name = name_of(update)
        if not takes(kind, update):
            raise _not_taken(kind, name, UPDATES_OF_KIND[kind])
        handle = case_handle(self._client, case_id)
        try:
            with acting_as(caller):
                view = await handle.execute_update(
                    update, decision, id=f"{name}:{message_key(decision)}"
                )
        except ErasedDataError as error:
            raise erased_case(case_id) from error
        except WorkflowUpdateFailedError as error:
            raise refused_decision(error) from error
        except RPCError as error:
            if error.status is RPCStatusCode.NOT_FOUND:
                raise unknown_case(case_id, open_only=True) from error
            raise
        finally:
            # Counted anew even after a refusal: one may move the case (R17's goes to a
            # supervisor, R18).
            self._queues.changed()
        return view


def _not_taken(kind: CaseKind, name: str, taken: frozenset[str]) -> RefusedInputError:
    return RefusedInputError(
        f"a {kind.value} case does not take {name}; it takes {', '.join(sorted(taken))}",
        field=name,
    )
