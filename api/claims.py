"""Carrier claims over HTTP (R15): the carrier claims desk's answer to a claim."""

from __future__ import annotations

from fastapi import APIRouter, status
from fastapi.routing import APIRoute

from api.callers import CarrierDesk
from api.errors import documented
from domain.claim import CarrierResponse
from infra.case_messages import name_of
from infra.gateway import CaseGateway
from infra.path_params import CaseId
from workflows.carrier_claim import CarrierClaim


def claims_router(gateway: CaseGateway, route_class: type[APIRoute]) -> APIRouter:
    router = APIRouter(route_class=route_class)

    @router.post(
        "/claims/{claim_id}/carrier-response",
        status_code=status.HTTP_202_ACCEPTED,
        responses=documented(404),
    )
    async def carrier_response(
        claim_id: CaseId, body: CarrierResponse, caller: CarrierDesk
    ) -> dict[str, str]:
        """R15: the carrier claims desk's callback, from a client made for the claim's
        carrier; an id that is no carrier claim's (a case, a survey), another carrier's
        claim, or a claim that can no longer take it answers 404, and the answer is kept
        for a person."""
        await gateway.carrier_response(claim_id, body, caller)
        return {"claim_id": claim_id, "accepted": name_of(CarrierClaim.carrier_response)}

    return router
