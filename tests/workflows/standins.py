"""Stand-in activities for the fast workflow tests: the activity names the workflows call,
kept in memory instead of PostgreSQL, and idempotent like the real ones (same key, same
answer). Tests read what each was asked: the ledger, money, messages, parcels, claims.

Also an in-memory store of per-case data keys, so the project's sealing converter
(infra/security/data_converter.py) runs without PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from activities.carrier import ChaseClaim, ClaimLedgerEntry, FileClaim, Intercept
from activities.ledger import LedgerEntry
from activities.notifications import CustomerMessage, Template
from activities.outside import NoType, OutsideRefusal, UnknownAnswer, answered_no_as
from activities.payments import (
    REFUND_LIMIT_EXCEEDED,
    SETTLED_ELSEWHERE_PREFIX,
    ChargeOrder,
    PaymentConfirmation,
    RefundOrder,
    SettledElsewhere,
)
from activities.warehouse import CancelShipment, ShipmentOrder, StockQuery
from domain.ledger import LedgerAction
from domain.money import Money
from domain.survey import SurveyResult
from domain.transitions import UnlistedTransition
from infra.security.codec import KEY_BYTES, NewDataKey, UnknownKeyError
from infra.security.grants import GrantCheckInterceptor
from tests.identities import IDENTITIES
from worker import WORKFLOW_RUNNER, WORKFLOWS


class InMemoryDataKeys:
    """infra.security.codec.DataKeys in a dict: one fresh key per case scope."""

    def __init__(self) -> None:
        self._keys: dict[str, AESGCM] = {}

    async def for_sealing(self, scope: str) -> AESGCM:
        if scope not in self._keys:
            self._keys[scope] = AESGCM(AESGCM.generate_key(KEY_BYTES * 8))
        return self._keys[scope]

    def new_key(self, scope: str) -> NewDataKey:
        return NewDataKey(scope, "in-memory", b"", AESGCM.generate_key(KEY_BYTES * 8))

    def stored(self, new: NewDataKey) -> None:
        self._keys.setdefault(new.scope, AESGCM(new.key))

    async def for_opening(self, scope: str) -> AESGCM:
        if scope not in self._keys:
            raise UnknownKeyError(f"no data key for {scope}")
        return self._keys[scope]

    def forget(self, scopes: Iterable[str]) -> None:
        # The dict is the store itself, not a cache of one: there is nothing to drop.
        return None


MoneyKind = Literal["refund", "charge"]


@dataclass(frozen=True)
class Movement:
    kind: MoneyKind
    case_id: str
    amount: Money
    reference: str


@dataclass
class StandIns:
    """Every activity of a case's life, remembered. `out_of_stock` and `already_shipped`
    (order ids) set the warehouse's answers, as SandboxWarehouse does; the sets after
    them make an outside system say no (docs/outside/), as a real one may."""

    ledger: dict[str, dict[int, LedgerEntry]] = field(default_factory=dict)
    claim_ledger: dict[str, dict[int, ClaimLedgerEntry]] = field(default_factory=dict)
    money: dict[str, Movement] = field(default_factory=dict)
    messages: dict[str, CustomerMessage] = field(default_factory=dict)
    shipments: dict[str, ShipmentOrder] = field(default_factory=dict)
    claims_filed: dict[str, FileClaim] = field(default_factory=dict)
    chased: list[str] = field(default_factory=list)
    intercepted: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    surveys: dict[str, SurveyResult] = field(default_factory=dict)
    out_of_stock: set[str] = field(default_factory=set)
    already_shipped: set[str] = field(default_factory=set)
    # Case ids whose payments the provider declines, until a test takes them out.
    declining: set[str] = field(default_factory=set)
    # Case ids whose payments get an answer the provider's contract does not define.
    unknown_answers: set[str] = field(default_factory=set)
    refused_skus: set[str] = field(default_factory=set)  # the warehouse sends none
    rejecting_carriers: set[str] = field(default_factory=set)  # their desks reject claims
    refusing_intercepts: set[str] = field(default_factory=set)  # carriers stopping none
    unreachable_customers: set[str] = field(default_factory=set)  # messaging refuses them
    declined: list[str] = field(default_factory=list)  # keys declined, in order

    # --- what the tests read ---

    def __post_init__(self) -> None:
        # Declined payments by key: what a settlement elsewhere records.
        self._pending: dict[str, tuple[str, Money]] = {}

    def actions(self, case_id: str) -> list[LedgerAction]:
        steps = self.ledger.get(case_id, {})
        return [steps[seq].action for seq in sorted(steps)]

    def steps(self, case_id: str) -> list[LedgerEntry]:
        steps = self.ledger.get(case_id, {})
        return [steps[seq] for seq in sorted(steps)]

    def claim_actions(self, claim_id: str) -> list[LedgerAction]:
        steps = self.claim_ledger.get(claim_id, {})
        return [steps[seq].action for seq in sorted(steps)]

    def refunded(self, case_id: str) -> int:
        return self._total(case_id, "refund")

    def charged(self, case_id: str) -> int:
        return self._total(case_id, "charge")

    def templates(self, case_id: str) -> list[Template]:
        return [m.template for m in self.messages.values() if m.case_id == case_id]

    def _total(self, case_id: str, kind: MoneyKind) -> int:
        return sum(
            m.amount.amount_minor
            for m in self.money.values()
            if m.case_id == case_id and m.kind == kind
        )

    # --- the activities, under the names the workflows call ---

    @activity.defn(name="record_case_step")
    async def record_case_step(self, entry: LedgerEntry) -> bool:
        steps = self.ledger.setdefault(entry.case.case_id, {})
        if entry.seq in steps:
            return False
        steps[entry.seq] = entry
        return True

    @activity.defn(name="record_claim_step")
    async def record_claim_step(self, entry: ClaimLedgerEntry) -> None:
        self.claim_ledger.setdefault(entry.claim.request.claim_id, {}).setdefault(entry.seq, entry)

    @activity.defn(name="issue_refund")
    async def issue_refund(self, order: RefundOrder) -> PaymentConfirmation:
        """R21 as the real activity checks it: a key reused for another amount, or a
        refund past the case's limit, is refused for good."""
        already = self.refunded(order.case_id)
        if order.idempotency_key not in self.money and (
            already + order.amount.amount_minor > order.limit.amount_minor
        ):
            raise ApplicationError(
                f"R21: refunding {order.amount} passes the limit {order.limit}",
                type=REFUND_LIMIT_EXCEEDED,
                non_retryable=True,
            )
        return self._pay("refund", order.case_id, order.idempotency_key, order.amount)

    @activity.defn(name="charge_customer")
    async def charge_customer(self, order: ChargeOrder) -> PaymentConfirmation:
        return self._pay("charge", order.case_id, order.idempotency_key, order.amount)

    @activity.defn(name="settle_payment_elsewhere")
    async def settle_payment_elsewhere(self, settled: SettledElsewhere) -> PaymentConfirmation:
        kind: MoneyKind = "charge" if ":charge:" in settled.idempotency_key else "refund"
        case_id, amount = self._pending[settled.idempotency_key]
        reference = f"{SETTLED_ELSEWHERE_PREFIX}{settled.reference}"
        paid = self.money.setdefault(
            settled.idempotency_key, Movement(kind, case_id, amount, reference)
        )
        return PaymentConfirmation(provider_reference=paid.reference, amount=amount)

    def _pay(self, kind: MoneyKind, case_id: str, key: str, amount: Money) -> PaymentConfirmation:
        with answered_no_as(NoType.PAYMENT_DECLINED):
            if key not in self.money and case_id in self.declining | self.unknown_answers:
                self._pending[key] = (case_id, amount)
                self.declined.append(key)
                if case_id in self.unknown_answers:
                    raise UnknownAnswer("payments: HTTP 418, which its contract does not define")
                raise OutsideRefusal("insufficient funds")
        paid = self.money.setdefault(key, Movement(kind, case_id, amount, f"standin-{kind}-{key}"))
        if paid.amount != amount:
            raise ApplicationError(
                f"R21: {kind} key {key} was already used for another amount",
                type=REFUND_LIMIT_EXCEEDED,
                non_retryable=True,
            )
        return PaymentConfirmation(provider_reference=paid.reference, amount=amount)

    @activity.defn(name="notify_customer")
    async def notify_customer(self, message: CustomerMessage) -> None:
        with answered_no_as(NoType.MESSAGE_REFUSED):
            if message.customer_id in self.unreachable_customers:
                raise OutsideRefusal("no reachable address")
        self.messages.setdefault(message.idempotency_key, message)

    @activity.defn(name="ship_to_customer")
    async def ship_to_customer(self, order: ShipmentOrder) -> str:
        with answered_no_as(NoType.SHIPMENT_REFUSED):
            if order.sku in self.refused_skus:
                raise OutsideRefusal(f"no stock of {order.sku} to pick")
        self.shipments.setdefault(order.idempotency_key, order)
        return f"shipment-{order.idempotency_key}"

    @activity.defn(name="check_stock")
    async def check_stock(self, query: StockQuery) -> bool:
        return query.sku not in self.out_of_stock

    @activity.defn(name="cancel_shipment")
    async def cancel_shipment(self, order: CancelShipment) -> bool:
        if order.order_id in self.already_shipped:
            return False
        line = f"{order.order_id}/{order.line_id}"
        if line not in self.cancelled:
            self.cancelled.append(line)
        return True

    @activity.defn(name="file_carrier_claim")
    async def file_carrier_claim(self, order: FileClaim) -> str:
        with answered_no_as(NoType.CLAIM_REJECTED):
            if order.carrier in self.rejecting_carriers:
                raise OutsideRefusal("not liable: the parcel was handed over intact")
        self.claims_filed.setdefault(order.claim_id, order)
        return f"{order.carrier}-claim-{order.claim_id}"

    @activity.defn(name="chase_carrier_claim")
    async def chase_carrier_claim(self, order: ChaseClaim) -> None:
        self.chased.append(order.carrier_reference)

    @activity.defn(name="intercept_parcel")
    async def intercept_parcel(self, order: Intercept) -> str:
        with answered_no_as(NoType.INTERCEPT_REFUSED):
            if order.carrier in self.refusing_intercepts:
                raise OutsideRefusal("out for delivery: too late to stop")
        if order.order_id not in self.intercepted:
            self.intercepted.append(order.order_id)
        return f"{order.carrier}-intercept-{order.order_id}"

    @activity.defn(name="record_survey")
    async def record_survey(self, result: SurveyResult) -> None:
        self.surveys.setdefault(result.case_id, result)

    def worker(self, client: Client, task_queue: str) -> Worker:
        """The production workflows and sandbox on `task_queue`, these activities behind."""
        return Worker(
            client,
            task_queue=task_queue,
            workflows=WORKFLOWS,
            workflow_runner=WORKFLOW_RUNNER,
            activities=[
                self.record_case_step,
                self.record_claim_step,
                self.issue_refund,
                self.charge_customer,
                self.settle_payment_elsewhere,
                self.notify_customer,
                self.ship_to_customer,
                self.check_stock,
                self.cancel_shipment,
                self.file_carrier_claim,
                self.chase_carrier_claim,
                self.intercept_parcel,
                self.record_survey,
            ],
            interceptors=[GrantCheckInterceptor(IDENTITIES.verifier)],
            # A status change the kind's table lacks fails the case at once here; in
            # production it fails the workflow task, and the case waits for a fixed build.
            workflow_failure_exception_types=[UnlistedTransition],
        )
