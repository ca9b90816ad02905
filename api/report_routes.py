"""R24 over HTTP: units delivered in (the return rate's denominator), and the report out:
as JSON, one section as CSV, one HTML page, and its plots."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute

from activities.analytics_store import DeliveryOutcome
from api.callers import Service, Staff
from api.rendered_reports import RenderedReports
from api.report_page import MEDIA_TYPES, ImageFormat, Plot
from domain.analytics import DeliveryReport, Report, ReportFilters
from infra.gateway import CaseGateway
from infra.report_csv import Section, report_csv


def _report_filters(
    from_day: Annotated[date | None, Query(alias="from")] = None,
    to_day: Annotated[date | None, Query(alias="to")] = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    sku: Annotated[str | None, Query(max_length=64)] = None,
    batch: Annotated[str | None, Query(max_length=64)] = None,
    channel: Annotated[str | None, Query(max_length=64)] = None,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    reason: Annotated[str | None, Query(max_length=64)] = None,
) -> ReportFilters:
    """Days are UTC and inclusive; a value nothing has (an unknown SKU) narrows to
    nothing, it is not an error. `to` before `from` is 422 naming `to`."""
    if from_day and to_day and to_day < from_day:
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("query", "to"),
              "msg": "before from: the range would be empty"}]
        )  # fmt: skip
    return ReportFilters(from_day=from_day, to_day=to_day, category=category, sku=sku,
                         batch=batch, channel=channel, kind=kind, reason=reason)  # fmt: skip


Filters = Annotated[ReportFilters, Depends(_report_filters)]


def reports_router(
    gateway: CaseGateway, rendered: RenderedReports, route_class: type[APIRoute]
) -> APIRouter:
    router = APIRouter(route_class=route_class)

    @router.post("/deliveries")
    async def deliveries(report: DeliveryReport, _: Service) -> DeliveryOutcome:
        """R24: units delivered per SKU, batch and day (UTC), the return rate's
        denominator. Each row is that day's total: sending it again changes nothing
        (`changed` 0), a different total replaces it. A bad row refuses the whole report
        (422 naming `rows.<n>.<field>`, the body kept for a person); nothing is stored."""
        return await gateway.analytics.record_deliveries(report.rows)

    @router.get("/reports")
    async def report(filters: Filters, _: Staff) -> Report:
        """R24: return rates by SKU and batch (returned units / delivered units), reasons
        and root causes, time to resolve (p50, p90 hours) by kind and reason, SLA
        compliance per rule with its breaches, money, carrier claims, satisfaction and its
        weekly trend, and the batches the alarm flagged."""
        return await gateway.report(filters)

    @router.get(
        "/reports/{section}.csv",
        responses={200: {"content": {"text/csv": {}}, "description": "one section as CSV"}},
    )
    async def report_section_csv(section: Section, filters: Filters, _: Staff) -> Response:
        """One section of `GET /reports` as CSV (`sla_breaches`: the listed breaches)."""
        text = report_csv(await gateway.report(filters), section)
        return Response(text, media_type="text/csv; charset=utf-8")

    @router.get(
        "/reports/page",
        responses={200: {"content": {"text/html": {}}, "description": "the report page"}},
    )
    async def report_page(filters: Filters, _: Staff) -> Response:
        """The report as one HTML page for a browser: flagged batches, plots, tables."""
        return HTMLResponse(await rendered.page(await gateway.report(filters)))

    @router.get(
        "/reports/plots/{plot}.{image_format}",
        responses={
            200: {"content": {"image/png": {}, "image/svg+xml": {}}, "description": "the plot"}
        },
    )
    async def report_plot(
        plot: Plot, image_format: ImageFormat, filters: Filters, _: Staff
    ) -> Response:
        """One plot of the report, PNG or SVG."""
        image = await rendered.plot(await gateway.report(filters), plot, image_format)
        return Response(image, media_type=MEDIA_TYPES[image_format])

    return router
