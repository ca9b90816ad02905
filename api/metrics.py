"""The API's /metrics: requests by route template and status, their latency, the refused
inputs budget's 429s, and the business figures (infra/business_metrics.py).

prometheus-client is the Prometheus project's own library: one registry per app (tests
build many apps), histograms, and custom collectors for the figures read at scrape time.
Routes are labelled by their template (`/cases/{case_id}`), never by the path a caller
sent: the label set stays bounded and no case id becomes a label."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.asgi import HttpMiddleware, on_response_start
from api.refusal_budget import RefusalBudget
from infra.business_metrics import BusinessFigures

METRICS_PATH = "/metrics"
UNMATCHED_ROUTE = "unmatched"


class _OverBudget(Collector):
    def __init__(self, budget: RefusalBudget) -> None:
        self._budget = budget

    def collect(self) -> Iterator[Metric]:
        # One total: the per-client split names people (staff) and stays in the logs.
        family = CounterMetricFamily(
            "aftersales_refused_input_budget_exceeded",
            "Writes answered 429 because their client's refused-input budget was spent.",
        )
        family.add_metric([], sum(self._budget.over_budget.values()))
        yield family


class RequestMetrics(HttpMiddleware):
    """Plain ASGI around the whole app: every answer counted, the 401s and 413s included."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        super().__init__(app)
        self._metrics = metrics

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500

        def seen(start: Message) -> None:
            nonlocal status
            status = start["status"]

        try:
            await self._app(scope, receive, on_response_start(send, seen))
        finally:
            route = self._metrics.route_of(scope)
            self._metrics.requests.labels(scope["method"], route, str(status)).inc()
            self._metrics.latency.labels(scope["method"], route).observe(
                time.perf_counter() - started
            )


class ApiMetrics:
    def __init__(
        self,
        app: FastAPI,
        budget: RefusalBudget,
        figures: BusinessFigures,
        routers: Sequence[APIRouter] = (),
    ) -> None:
        """`routers`: those the app includes, whose routes are labelled by their template
        too (the app keeps an included router behind one entry, with no template)."""
        self._app = app
        self._routers = routers
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "aftersales_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "aftersales_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ["method", "route"],
            registry=self.registry,
        )
        self.registry.register(_OverBudget(budget))
        self.registry.register(figures)
        self._figures = figures

    def route_of(self, scope: Scope) -> str:
        """The template of the route the request reached, or would have reached had it
        not been answered before (a 401, a 413)."""
        # The router leaves the route it chose in the scope (the status routes' and the
        # desk's too, which the scan below does not see): one match instead of a scan of
        # every route, on every request.
        reached = scope.get("route")
        if isinstance(reached, APIRoute) and reached.matches(scope)[0] is Match.FULL:
            return reached.path
        included = (route for router in self._routers for route in router.routes)
        for route in (*self._app.router.routes, *included):
            if hasattr(route, "path") and route.matches(scope)[0] is Match.FULL:
                return str(route.path)
        return UNMATCHED_ROUTE

    async def exposition(self, _: Request) -> Response:
        await self._figures.refresh()
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)
