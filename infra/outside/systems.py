"""Which outside systems the worker talks to, by configuration alone: each system's
HTTP adapter when its AFTERSALES_<SYSTEM>_URL is set, else its sandbox, which the
sandbox file (AFTERSALES_SANDBOX_FILE) can make refuse, so every branch of a case is
reachable without code (docs/operations.md, "Outside systems")."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from activities.carrier import CarrierGateway, SandboxCarrier
from activities.notifications import LoggingNotifier, Notifier
from activities.payments import PaymentProvider
from activities.warehouse import SandboxWarehouse, Warehouse
from infra.outside.adapters import HttpCarrier, HttpNotifier, HttpPaymentProvider, HttpWarehouse
from infra.outside.service import SignedService
from infra.settings import ConfigurationError, OutsideSystem, Settings


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SandboxPayments(_Section):
    declined_orders: list[str] = Field(default_factory=list)  # refunds and charges declined


class SandboxWarehouseFile(_Section):
    out_of_stock: list[str] = Field(default_factory=list)  # SKUs: none in stock, none sent
    already_shipped: list[str] = Field(default_factory=list)  # order ids: too late to cancel


class SandboxCarrierFile(_Section):
    rejecting_claims: list[str] = Field(default_factory=list)  # carriers rejecting every claim
    refusing_intercepts: list[str] = Field(default_factory=list)  # carriers stopping no parcel


class SandboxFile(_Section):
    """What the sandbox systems refuse; everything else they do."""

    payments: SandboxPayments = Field(default_factory=SandboxPayments)
    warehouse: SandboxWarehouseFile = Field(default_factory=SandboxWarehouseFile)
    carrier: SandboxCarrierFile = Field(default_factory=SandboxCarrierFile)


def load_sandbox_file(path: Path | None) -> SandboxFile:
    if path is None:
        return SandboxFile()
    try:
        return SandboxFile.model_validate(tomllib.loads(path.read_text()))
    except (OSError, tomllib.TOMLDecodeError, ValidationError) as error:
        raise ConfigurationError(f"AFTERSALES_SANDBOX_FILE {path}: {error}") from error


@dataclass
class OutsideSystems:
    payments: PaymentProvider
    notifier: Notifier
    warehouse: Warehouse
    carrier: CarrierGateway
    # Where each system is: "sandbox" or its service's URL (a start-up log line).
    where: dict[OutsideSystem, str]
    services: list[SignedService] = field(default_factory=list)

    async def aclose(self) -> None:
        for service in self.services:
            await service.aclose()


def outside_systems(settings: Settings) -> OutsideSystems:
    sandbox = load_sandbox_file(settings.sandbox_file)
    endpoints = {system: settings.endpoint(system) for system in OutsideSystem}
    payments = endpoints[OutsideSystem.PAYMENTS]
    messaging = endpoints[OutsideSystem.MESSAGING]
    warehouse = endpoints[OutsideSystem.WAREHOUSE]
    carrier = endpoints[OutsideSystem.CARRIER]
    systems = OutsideSystems(
        payments=HttpPaymentProvider(payments)
        if payments
        else settings.sandbox_payments(declined_orders=set(sandbox.payments.declined_orders)),
        notifier=HttpNotifier(messaging) if messaging else LoggingNotifier(),
        warehouse=HttpWarehouse(warehouse)
        if warehouse
        else SandboxWarehouse(
            out_of_stock=set(sandbox.warehouse.out_of_stock),
            already_shipped=set(sandbox.warehouse.already_shipped),
        ),
        carrier=HttpCarrier(carrier)
        if carrier
        else SandboxCarrier(
            rejecting_claims=set(sandbox.carrier.rejecting_claims),
            refusing_intercepts=set(sandbox.carrier.refusing_intercepts),
        ),
        where={
            system: endpoint.base_url if endpoint else "sandbox"
            for system, endpoint in endpoints.items()
        },
    )
    for adapter in (systems.payments, systems.notifier, systems.warehouse, systems.carrier):
        if isinstance(adapter, HttpPaymentProvider | HttpNotifier | HttpWarehouse | HttpCarrier):
            systems.services.append(adapter.service)
    return systems
