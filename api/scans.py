"""Warehouse scans over HTTP (R26): a batch from the dock and the inspection benches."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, status
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from api.callers import Scanner
from api.errors import ApiError, item_of, one_line
from domain.case import ScanReport, Strict, WarehouseScan
from domain.workflow_ids import CaseIdText
from infra.gateway import CaseGateway


class ScanSubmission(ScanReport):
    barcode: CaseIdText = Field(description="the return label's barcode: the case id")


class ScanBatch(Strict):
    scans: Annotated[list[ScanSubmission], Field(min_length=1, max_length=100)]


class ScanResult(BaseModel):
    scan_id: str
    barcode: str
    accepted: bool
    problem: str | None = None


class ScanBatchRefusal(ApiError):
    """A batch with a scan no open case takes: the error shape, and every scan's outcome
    (the others were applied; sending the batch again changes nothing, R26)."""

    results: list[ScanResult]


# Why a batch with an unknown barcode is 404 and not 207 (Multi-Status): a scanner that
# reads only the status still sees that a parcel needs a person; the body says which.
_SCAN_404 = (
    "a barcode matches no open case: that scan is kept for a person (R26); the body lists "
    "every scan's outcome, the others were applied"
)


def scans_router(gateway: CaseGateway, route_class: type[APIRoute]) -> APIRouter:
    router = APIRouter(route_class=route_class)

    @router.post(
        "/scans",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=list[ScanResult],
        responses={404: {"model": ScanBatchRefusal, "description": _SCAN_404}},
    )
    async def scans(batch: ScanBatch, caller: Scanner) -> list[ScanResult] | JSONResponse:
        """R26: 202 when every scan was durably signalled to its case (a repeated scan
        changes nothing). A barcode's scans are applied in the order sent. If any barcode
        matches no open case: 404, that scan kept for a person, and every scan's outcome
        listed (the others were applied)."""
        problems = await gateway.scan_batch(
            [
                # The scanner is the proven caller, never what the body says (R23).
                (
                    s.barcode,
                    WarehouseScan(**s.model_dump(exclude={"barcode"}), scanned_by=caller.actor),
                )
                for s in batch.scans
            ]
        )
        results = [
            ScanResult(scan_id=submission.scan_id, barcode=submission.barcode,
                       accepted=problem is None, problem=str(problem) if problem else None)
            for submission, problem in zip(batch.scans, problems, strict=True)
        ]  # fmt: skip
        if all(r.accepted for r in results):
            return results
        errors = [
            item_of(problem).model_copy(update={"field": f"scans.{place}.barcode"})
            for place, problem in enumerate(problems)
            if problem is not None
        ]
        refusal = ScanBatchRefusal(detail=one_line(errors), errors=errors, results=results)
        return JSONResponse(refusal.model_dump(), status_code=status.HTTP_404_NOT_FOUND)

    return router
