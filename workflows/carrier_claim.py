"""CarrierClaim (R8, R15): file with the carrier before its deadline, chase it every
7 days, escalate after 30 silent days, record what was claimed and recovered.

It runs as a child of a damage case but outlives it (parent-close policy: abandon):
a carrier can take months. It continues as new to keep its history bounded.

Once closed (settled, declined, deadline missed) it still listens for the policy's
late-answer window: a carrier answer that comes after the close (a second callback, a
revised offer) is recorded in the claim's ledger and never reopens it; one that differs
from the recorded outcome is left for a person (R15). After the window the workflow is
gone, and a callback for it must be kept by whoever receives it (see the gateway)."""

from __future__ import annotations

from pydantic import BaseModel, Field
from temporalio import workflow

from activities.carrier import CarrierActivities, ChaseClaim, ClaimLedgerEntry, FileClaim
from activities.outside import NoType, OutsideNo
from domain.claim import CarrierAnswer, CarrierClaimRequest, ClaimState, ClaimStatus
from domain.ledger import Ledger, LedgerAction, check_ledger
from domain.policy import (
    carrier_silence_deadline,
    claim_file_deadline,
    late_carrier_response_reason,
    next_chase_due,
)
from domain.refusal import OutsideAnswer
from domain.rules import Rule
from domain.transitions import check_claim_transition
from workflows.steps.outside import call_or_no, call_outside
from workflows.steps.timers import wait_until


class ClaimRun(BaseModel):
    request: CarrierClaimRequest
    carried_state: ClaimState | None = None
    history_events_before_continue: int = Field(default=2_000, ge=10)


@workflow.defn
class CarrierClaim:
    @workflow.init
    def __init__(self, run: ClaimRun) -> None:
        self._run = run
        self._state = run.carried_state or ClaimState(
            request=run.request,
            file_deadline=claim_file_deadline(run.request.deadline_counts_from, run.request.policy),
        )

    @workflow.run
    async def run(self, run: ClaimRun) -> ClaimState:
        state = self._state
        if state.status is ClaimStatus.FILING:
            await self._file()
        while not state.status.is_closed:
            if state.pending_responses:
                await self._answered(state.pending_responses.pop(0))
            else:
                await self._wait()
            if self._history_is_long() and not state.status.is_closed:
                await self._continue_as_new()
        await self._late_answers()
        return state

    async def _continue_as_new(self) -> None:
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self._run.model_copy(update={"carried_state": self._state}))

    async def _late_answers(self) -> None:
        """After the close, answers are recorded for the late-answer window (R15)."""
        state = self._state
        if state.closed_at is None:
            raise RuntimeError("a claim listens for late answers only once closed")
        until = state.closed_at + state.request.policy.carrier_late_answer_window
        while True:
            while state.pending_responses:
                await self._answered_after_close(state.pending_responses.pop(0))
            if self._history_is_long():
                await self._continue_as_new()
            if not await wait_until(
                lambda: bool(state.pending_responses), until, "R15 late carrier answers"
            ):
                return

    @workflow.signal
    def carrier_response(self, response: CarrierAnswer) -> None:
        """The carrier's answer; a repeated callback changes nothing."""
        if response.response_id in self._state.seen_response_ids:
            return
        self._state.seen_response_ids.append(response.response_id)
        self._state.pending_responses.append(response)

    @workflow.query
    def state(self) -> ClaimState:
        return self._state

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= self._run.history_events_before_continue
        )

    async def _file(self) -> None:
        state = self._state
        request = state.request
        if workflow.now() > state.file_deadline:
            await self._record(
                LedgerAction.CLAIM_DEADLINE_MISSED,
                rule=Rule.R15,
                reason=f"the {request.carrier} deadline {state.file_deadline} has passed; "
                "the loss stays with the merchant",
                status=ClaimStatus.DEADLINE_MISSED,
            )
            return
        filed = await call_or_no(
            CarrierActivities.file_claim,
            FileClaim(claim_id=request.claim_id, carrier=request.carrier, amount=request.amount),
            summary=f"file claim with {request.carrier} for {request.amount}",
            refused=NoType.CLAIM_REJECTED,
        )
        if isinstance(filed, OutsideNo):
            await self._rejected(filed)
            return
        state.carrier_reference = filed
        state.filed_at = workflow.now()
        await self._record(
            LedgerAction.CLAIM_FILED,
            rule=Rule.R15,
            reason=f"filed with {request.carrier} for {request.amount} before the deadline "
            f"{state.file_deadline:%Y-%m-%d}",
            status=ClaimStatus.AWAITING_CARRIER,
        )

    async def _wait(self) -> None:
        state = self._state
        if state.filed_at is None:
            raise RuntimeError("a claim waits only after it was filed")
        policy = state.request.policy
        at, summary = (
            next_chase_due(state.filed_at, len(state.chases), policy),
            "R15 chase the carrier",
        )
        silent = False
        if state.escalated_at is None:
            silent_at = carrier_silence_deadline(state.filed_at, policy)
            # On a tie the escalation comes before the chase.
            if silent_at <= at:
                at, summary, silent = silent_at, "R15 carrier silent", True
        if await wait_until(lambda: bool(state.pending_responses), at, summary):
            return
        if silent:
            state.escalated_at = workflow.now()
            await self._record(
                LedgerAction.CLAIM_ESCALATED,
                rule=Rule.R15,
                reason=f"no answer from {state.request.carrier} in "
                f"{policy.carrier_silence_escalation.days} days (R18: to a supervisor)",
            )
            return
        chased = await call_or_no(
            CarrierActivities.chase,
            ChaseClaim(carrier_reference=state.carrier_reference or ""),
            summary=f"chase {state.request.carrier} ({len(state.chases) + 1})",
            refused=NoType.CLAIM_REJECTED,
        )
        if isinstance(chased, OutsideNo):
            await self._rejected(chased)
            return
        state.chases.append(workflow.now())
        await self._record(
            LedgerAction.CLAIM_CHASED,
            rule=Rule.R15,
            reason=f"chase {len(state.chases)}: no answer yet",
        )

    async def _rejected(self, no: OutsideNo) -> None:
        """R15: the carrier's desk rejected the claim (or answered what its contract does
        not define): closed as declined, the reason kept for a person, who may take it
        further with the carrier; late answers are still recorded."""
        unknown = no.answer is OutsideAnswer.UNKNOWN
        what = "answered what its contract does not define" if unknown else "rejected the claim"
        await self._record(
            LedgerAction.CLAIM_REJECTED,
            rule=Rule.R15,
            reason=f"{self._state.request.carrier}'s claims desk {what}: {no.reason}",
            status=ClaimStatus.DECLINED,
        )

    async def _answered(self, response: CarrierAnswer) -> None:
        state = self._state
        if response.recovered.currency != state.request.amount.currency:
            await self._record(
                LedgerAction.CARRIER_RESPONSE_REFUSED,
                rule=Rule.R15,
                reason=f"response {response.response_id} is in {response.recovered.currency}, "
                f"the claim in {state.request.amount.currency}",
                answered_by=response.answered_by,
            )
            return
        state.response = response
        await self._record(
            LedgerAction.CARRIER_ANSWERED,
            rule=Rule.R15,
            # The carrier's note is its own free text: kept in the claim, not the ledger.
            reason=f"claimed {state.request.amount}, recovered {response.recovered}",
            status=ClaimStatus.SETTLED if response.accepted else ClaimStatus.DECLINED,
            answered_by=response.answered_by,
        )

    async def _answered_after_close(self, response: CarrierAnswer) -> None:
        state = self._state
        state.late_responses.append(response)
        await self._record(
            LedgerAction.CARRIER_ANSWERED_AFTER_CLOSE,
            rule=Rule.R15,
            reason=late_carrier_response_reason(
                state.status, state.response, response, state.request.amount
            ),
            answered_by=response.answered_by,
        )

    async def _record(
        self,
        action: LedgerAction,
        *,
        rule: Rule,
        reason: str,
        status: ClaimStatus | None = None,
        answered_by: str | None = None,
    ) -> None:
        check_ledger(action, Ledger.CLAIM)
        state = self._state
        if status is not None:
            check_claim_transition(state.status, status, rule)
            state.status = status
            if status.is_closed:
                state.closed_at = workflow.now()
        state.ledger_seq += 1
        await call_outside(
            CarrierActivities.record_step,
            ClaimLedgerEntry(
                seq=state.ledger_seq,
                occurred_at=workflow.now(),
                action=action,
                rule_id=rule,
                reason=reason,
                answered_by=answered_by,
                claim=state,
            ),
            summary=f"claim ledger #{state.ledger_seq}: {action}",
        )
        workflow.set_current_details(
            f"**Carrier claim** with {state.request.carrier} — `{state.status.value}`\n\n"
            f"- Claimed: {state.request.amount}; recovered: {state.recovered}\n"
            f"- Chases: {len(state.chases)}; escalated: {state.escalated_at or 'no'}"
        )
