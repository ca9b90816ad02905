"""A customer's personal data over HTTP: erasure on their request (GDPR art. 17)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.routing import APIRoute

from api.callers import PrivacyOfficer
from api.errors import documented
from infra.gateway import CaseGateway
from infra.security.privacy import ErasureReport

CustomerId = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


def privacy_router(gateway: CaseGateway, route_class: type[APIRoute]) -> APIRouter:
    router = APIRouter(route_class=route_class)

    @router.post("/customers/{customer_id}/erasure", responses=documented(409))
    async def erasure(customer_id: CustomerId, caller: PrivacyOfficer) -> ErasureReport:
        """GDPR art. 17: the customer's ledger rows pseudonymised and their free text
        removed, their cases' data keys destroyed (their Temporal payloads can no longer be
        read); money records and the audit trail's rows, actions and times stay. 409 while
        a case of theirs (or its dispute window, survey or carrier claim) still runs;
        repeated, it erases nothing more (docs/privacy.md)."""
        return await gateway.erase_customer(customer_id, actor=caller.actor, role=caller.role)

    return router
