"""Parcels the warehouse sends out for a case (replacements, missing parts).

The warehouse system sits behind `Warehouse`; `SandboxWarehouse` stands in for it. The
shipments row is written first, so a retry never ships twice once it was recorded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import asyncpg
from pydantic import BaseModel
from temporalio import activity

from activities.outside import NoType, OutsideRefusal, answered_no_as
from domain.ledger import ShipmentPurpose


class Warehouse(Protocol):
    async def ship(self, *, idempotency_key: str, sku: str, quantity: int) -> str:
        """Send the parcel (once per key); return the shipment reference. A warehouse
        that cannot (no stock at picking) raises activities.outside.OutsideRefusal."""
        ...

    async def in_stock(self, *, sku: str, quantity: int) -> bool: ...

    async def cancel_shipment(self, *, order_id: str, line_id: str) -> bool:
        """R3: stop an order line leaving; False if it has already left."""
        ...


@dataclass
class SandboxWarehouse:
    shipped: dict[str, tuple[str, int]] = field(default_factory=dict)
    # Every SKU is in stock, and no order has left, unless a test says otherwise.
    out_of_stock: set[str] = field(default_factory=set)
    already_shipped: set[str] = field(default_factory=set)
    cancelled: list[str] = field(default_factory=list)

    async def cancel_shipment(self, *, order_id: str, line_id: str) -> bool:
        if order_id in self.already_shipped:
            return False
        self.cancelled.append(f"{order_id}/{line_id}")
        return True

    async def in_stock(self, *, sku: str, quantity: int) -> bool:
        return sku not in self.out_of_stock

    async def ship(self, *, idempotency_key: str, sku: str, quantity: int) -> str:
        if sku not in self.shipped.get(idempotency_key, ()) and sku in self.out_of_stock:
            raise OutsideRefusal(f"no stock of {sku} to pick (sandbox)")
        self.shipped.setdefault(idempotency_key, (sku, quantity))
        return f"shipment-{idempotency_key}"


class ShipmentOrder(BaseModel):
    idempotency_key: str
    case_id: str
    sku: str
    quantity: int
    purpose: ShipmentPurpose


class StockQuery(BaseModel):
    sku: str
    quantity: int


class CancelShipment(BaseModel):
    order_id: str
    line_id: str


class WarehouseActivities:
    def __init__(self, pool: asyncpg.Pool, warehouse: Warehouse) -> None:
        self._pool = pool
        self._warehouse = warehouse

    @activity.defn(name="check_stock")
    async def check_stock(self, query: StockQuery) -> bool:
        with answered_no_as(NoType.SHIPMENT_REFUSED):
            return await self._warehouse.in_stock(sku=query.sku, quantity=query.quantity)

    @activity.defn(name="cancel_shipment")
    async def cancel_shipment(self, order: CancelShipment) -> bool:
        # Idempotent at the warehouse: cancelling a cancelled line answers True again. Its
        # no (already left) is the False the case branches on (R3 -> R4).
        with answered_no_as(NoType.SHIPMENT_REFUSED):
            return await self._warehouse.cancel_shipment(
                order_id=order.order_id, line_id=order.line_id
            )

    @activity.defn(name="ship_to_customer")
    async def ship(self, order: ShipmentOrder) -> str:
        reference: str | None = await self._pool.fetchval(
            """INSERT INTO shipments (idempotency_key, case_id, sku, quantity, purpose)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (idempotency_key) DO UPDATE SET purpose = EXCLUDED.purpose
               RETURNING reference""",
            order.idempotency_key,
            order.case_id,
            order.sku,
            order.quantity,
            order.purpose,
        )
        if reference is not None:
            return reference
        # Refused: the row keeps no reference, and the key binds nothing (a later parcel
        # of the case may go out under it).
        with answered_no_as(NoType.SHIPMENT_REFUSED):
            reference = await self._warehouse.ship(
                idempotency_key=order.idempotency_key, sku=order.sku, quantity=order.quantity
            )
        await self._pool.execute(
            "UPDATE shipments SET reference = $2 WHERE idempotency_key = $1",
            order.idempotency_key,
            reference,
        )
        return reference
