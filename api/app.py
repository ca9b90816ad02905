"""The API: its middlewares, error answers and routers wired together. Routes are thin
translations between HTTP and the case gateway, one router per concern; no business
rules here."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import TracerProvider

from api.auth import Authentication
from api.callers import proven_staff
from api.cases import case_router, opening_router
from api.claims import claims_router
from api.codec import RunCodec, codec_app
from api.docs_pages import add_docs_pages
from api.errors import add_error_handlers, documented
from api.metrics import ApiMetrics, RequestMetrics
from api.middleware import BodyLimit, ServerTiming
from api.page_policy import PagePolicy
from api.privacy import privacy_router
from api.queues import queues_router
from api.refusal_budget import RefusalBudget, RefusalBudgetGuard
from api.rendered_reports import RenderedReports
from api.report_routes import reports_router
from api.request_ids import RequestIds
from api.review import review_router
from api.scans import scans_router
from api.security_headers import SecurityHeaders
from api.status import status_router
from api.strict_json import StrictJSONRoute
from desk.router import Desk
from infra.gateway import CaseGateway
from infra.security.identity import Authenticator

TEMPORAL_DEV_UI_ORIGIN = "http://localhost:8233"
# Every route may answer these (authentication, the body limit, validation, an outage).
_ANY_ROUTE = (401, 403, 413, 422, 429, 503)


def create_app(
    gateway: CaseGateway,
    authenticator: Authenticator,
    *,
    codec_origins: Sequence[str] = (TEMPORAL_DEV_UI_ORIGIN,),
    refusal_budget: RefusalBudget | None = None,
    run_codec: RunCodec | None = None,
    desk: Desk | None = None,
    tracer_provider: TracerProvider | None = None,
) -> FastAPI:
    """`run_codec`: `make run`'s codec endpoint for its own Temporal UI (api/codec.py).
    `desk`: the operators' desk (desk/: its pages, and its sign-in for them and for the
    report page). `tracer_provider`: traces each request (infra/tracing.py), when set."""
    app = FastAPI(
        title="aftersales",
        description="Returns, exchanges and damage claims as durable Temporal workflows.",
        version="0.1.0",
        responses=documented(*_ANY_ROUTE),
        # Served offline instead (api/docs_pages.py): FastAPI's own pages use a CDN.
        docs_url=None,
        redoc_url=None,
    )
    # Before any route is added: every route parses JSON strictly (api/strict_json.py).
    app.router.route_class = StrictJSONRoute
    # The last added runs first: the headers go on every answer, the 413 included.
    app.add_middleware(BodyLimit)
    # Per proven client, so after authentication; kept on the app for metrics to read.
    app.state.refusal_budget = budget = refusal_budget or RefusalBudget()
    app.add_middleware(RefusalBudgetGuard, budget=budget)
    # R24's page and plots, drawn once per report (kept on the app for metrics to read).
    app.state.rendered_reports = rendered = RenderedReports()
    # Nothing reads a body before the caller is proven: an unauthenticated 10 MB body is
    # refused before the body limit would count it.
    app.add_middleware(
        Authentication, authenticator=authenticator, desk=desk.gate if desk else None
    )
    app.add_middleware(SecurityHeaders)
    app.add_middleware(PagePolicy)
    app.add_middleware(ServerTiming)
    # Openings and scans before every other route: the router tries each route in turn
    # until one matches, and these two take nearly every request (a shop's every case, a
    # dock's every parcel). Every route parses JSON strictly (api/strict_json.py).
    intake = [opening_router(gateway, StrictJSONRoute), scans_router(gateway, StrictJSONRoute)]
    for router in intake:
        app.include_router(router)
    # The lists, queues and what waits for a person before `/cases/{case_id}`, which
    # would take their paths.
    routers = [
        reports_router(gateway, rendered, StrictJSONRoute),
        queues_router(gateway, StrictJSONRoute),
        review_router(gateway, StrictJSONRoute),
        case_router(gateway, StrictJSONRoute),
        privacy_router(gateway, StrictJSONRoute),
        claims_router(gateway, StrictJSONRoute),
    ]
    metrics = ApiMetrics(app, budget, gateway.figures, [*intake, *routers])
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(RequestIds)
    if tracer_provider is not None:
        FastAPIInstrumentor.instrument_app(app, tracer_provider=tracer_provider)
    add_error_handlers(app, gateway, budget)
    add_docs_pages(app)
    app.include_router(status_router(gateway, metrics))
    if desk is not None:
        app.include_router(desk.router)
    # The Temporal UI decodes payloads here for operators (staff only).
    app.mount(
        "/codec",
        codec_app(gateway.payload_codec, proven_staff, codec_origins, authenticator, run_codec),
    )
    for router in routers:
        app.include_router(router)
    return app
