"""The HTTP adapters: each outside system's protocol (activities/) over the merchant's
own service, as its contract in docs/outside/ defines it. The workflow's idempotency key
goes as `Idempotency-Key`; a refusal raises OutsideRefusal, an undefined answer
UnknownAnswer, no answer NoAnswerYet (infra/outside/service.py)."""

from __future__ import annotations

from urllib.parse import quote

from pydantic import BaseModel, Field, StrictBool

from activities.notifications import CustomerMessage
from activities.outside import OutsideRefusal
from domain.money import Money
from infra.outside.service import Endpoint, Method, SignedService


class Reference(BaseModel):
    """A yes: the outside system's reference for what it did."""

    reference: str = Field(min_length=1, max_length=256)


class Stock(BaseModel):
    in_stock: StrictBool


class Cancellation(BaseModel):
    cancelled: StrictBool


def _segment(value: str) -> str:
    return quote(value, safe="")


def _money(amount: Money) -> dict[str, int | str]:
    return {"amount_minor": amount.amount_minor, "currency": amount.currency}


class HttpPaymentProvider:
    """activities.payments.PaymentProvider (docs/outside/payments.openapi.yaml)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.service = SignedService("payments", endpoint)

    async def refund(self, *, idempotency_key: str, case_id: str, amount: Money) -> str:
        return await self._pay("/refunds", idempotency_key, case_id, amount)

    async def charge(self, *, idempotency_key: str, case_id: str, amount: Money) -> str:
        return await self._pay("/charges", idempotency_key, case_id, amount)

    async def find(self, *, idempotency_key: str) -> str | None:
        found = await self.service.find(f"/payments/{_segment(idempotency_key)}", Reference)
        return found.reference if found else None

    async def _pay(self, path: str, key: str, case_id: str, amount: Money) -> str:
        body = {"case_id": case_id, "amount": _money(amount)}
        paid = await self.service.call(Method.POST, path, Reference, body=body, idempotency_key=key)
        return paid.reference


class HttpNotifier:
    """activities.notifications.Notifier (docs/outside/messaging.openapi.yaml). The
    message's words are rendered by the messaging service from the template and params."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.service = SignedService("messaging", endpoint)

    async def deliver(self, message: CustomerMessage) -> None:
        await self.service.call(
            Method.POST,
            "/messages",
            Reference,
            body=message.model_dump(mode="json", exclude={"idempotency_key"}),
            idempotency_key=message.idempotency_key,
        )


class HttpWarehouse:
    """activities.warehouse.Warehouse (docs/outside/warehouse.openapi.yaml)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.service = SignedService("warehouse", endpoint)

    async def ship(self, *, idempotency_key: str, sku: str, quantity: int) -> str:
        body = {"sku": sku, "quantity": quantity}
        sent = await self.service.call(
            Method.POST, "/shipments", Reference, body=body, idempotency_key=idempotency_key
        )
        return sent.reference

    async def in_stock(self, *, sku: str, quantity: int) -> bool:
        stock = await self.service.call(
            Method.GET, f"/stock/{_segment(sku)}?quantity={quantity}", Stock
        )
        return stock.in_stock

    async def cancel_shipment(self, *, order_id: str, line_id: str) -> bool:
        """R3: the warehouse's refusal (the line has left) is the False the case reads."""
        path = f"/orders/{_segment(order_id)}/lines/{_segment(line_id)}/cancellation"
        try:
            answer = await self.service.call(
                Method.POST, path, Cancellation, idempotency_key=f"cancel:{order_id}:{line_id}"
            )
        except OutsideRefusal:
            return False
        return answer.cancelled


class HttpCarrier:
    """activities.carrier.CarrierGateway (docs/outside/carrier.openapi.yaml)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.service = SignedService("carrier", endpoint)

    async def file_claim(self, *, claim_id: str, carrier: str, amount: Money) -> str:
        body = {"claim_id": claim_id, "carrier": carrier, "amount": _money(amount)}
        filed = await self.service.call(
            Method.POST, "/claims", Reference, body=body, idempotency_key=claim_id
        )
        return filed.reference

    async def chase(self, *, carrier_reference: str, idempotency_key: str) -> None:
        await self.service.call(
            Method.POST,
            f"/claims/{_segment(carrier_reference)}/chase",
            Reference,
            idempotency_key=idempotency_key,
        )

    async def intercept(self, *, order_id: str, carrier: str) -> str:
        body = {"order_id": order_id, "carrier": carrier}
        stopped = await self.service.call(
            Method.POST,
            "/intercepts",
            Reference,
            body=body,
            idempotency_key=f"intercept:{order_id}",
        )
        return stopped.reference
