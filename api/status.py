"""/healthz, /readyz and /metrics: read without a credential, by probes and scrapers
(docs/operations.md: publish them to the monitoring network, not beyond your proxy). They
answer with ids and counts only: no case, no personal data. Operations' own, not the
integration contract: they are left out of the OpenAPI document, whose every error
answer is the API's error model."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.metrics import METRICS_PATH, ApiMetrics
from infra.gateway import CaseGateway

HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
STATUS_PATHS = frozenset({HEALTH_PATH, READY_PATH, METRICS_PATH})


def status_router(gateway: CaseGateway, metrics: ApiMetrics) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get(HEALTH_PATH)
    async def healthz() -> dict[str, bool]:
        """Alive: the process answers."""
        return {"alive": True}

    @router.get(READY_PATH)
    async def readyz() -> JSONResponse:
        """Ready: PostgreSQL and Temporal reachable, every migration applied (else 503)."""
        ready = await gateway.readiness()
        return JSONResponse(ready.model_dump(mode="json"), status_code=200 if ready.ready else 503)

    router.add_api_route(METRICS_PATH, metrics.exposition)
    return router
