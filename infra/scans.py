"""Warehouse scans (R26): the barcode on a return label is its case id. Each scan is
signalled to its case and kept in `scans`; one that matches no open case is kept in
unmatched_scans for a person, who may attach it to the case it belongs to."""

from __future__ import annotations

import asyncio

import asyncpg
from opentelemetry import trace
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from domain.case import WarehouseScan
from domain.rules import Rule
from domain.workflow_ids import case_kind_of
from infra.case_errors import UnknownCaseError
from infra.case_ids import case_kind
from infra.case_messages import case_handle
from infra.case_queues import CaseQueues
from infra.kept_for_review import KeptForReview, Resolver, UnmatchedScan
from infra.security.codec import ErasedDataError
from workflows.case_handlers import CaseHandlers

# A no-op unless the API traces (infra/tracing.py): bench/breakdown.py reads these.
_STAGES = trace.get_tracer("aftersales.scans")
_INSERT_SCAN = """
    INSERT INTO scans (scan_id, case_id, event, station, grade, photos, scanned_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (scan_id) DO NOTHING"""


class Scans:
    def __init__(
        self, client: Client, pool: asyncpg.Pool, kept: KeptForReview, queues: CaseQueues
    ) -> None:
        self._client = client
        self._pool = pool
        self._kept = kept
        self._queues = queues

    async def scan(self, barcode: str, scan: WarehouseScan) -> None:
        [problem] = await self.scan_batch([(barcode, scan)])
        if problem is not None:
            raise problem

    async def scan_batch(
        self, scans: list[tuple[str, WarehouseScan]]
    ) -> list[UnknownCaseError | None]:
        """R26: the barcode on a return label is its case id. Each scan is signalled to its
        case and then kept in `scans`; one that matches no open case is kept in
        unmatched_scans for a person, and its place in the answer says why. A barcode's
        scans are signalled one after another in the order sent (a dock scan before its
        inspection starts R13's clock from the dock); different barcodes go concurrently."""
        places_of_barcode: dict[str, list[int]] = {}
        for place, (barcode, _) in enumerate(scans):
            places_of_barcode.setdefault(barcode, []).append(place)
        problems: list[UnknownCaseError | None] = [None] * len(scans)

        async def in_order(places: list[int]) -> None:
            for place in places:
                problems[place] = await self._signal_scan(*scans[place])

        await asyncio.gather(*(in_order(places) for places in places_of_barcode.values()))
        rows = [
            _scan_row(barcode, scan)
            for (barcode, scan), problem in zip(scans, problems, strict=True)
            if problem is None
        ]
        with _STAGES.start_as_current_span("scans insert"):
            if len(rows) == 1:
                # A scanner's usual request: `execute` costs the API a tenth less CPU than
                # `executemany` of one row.
                await self._pool.execute(_INSERT_SCAN, *rows[0])
            else:
                await self._pool.executemany(_INSERT_SCAN, rows)
        return problems

    async def _deliver_scan(self, barcode: str, scan: WarehouseScan) -> str | None:
        """The scan signalled to the case `barcode` names (its scan id makes a repeat
        change nothing, R26), or why it could not be."""
        # A barcode naming another workflow (a survey, a carrier claim) would be signalled
        # and never read: only a case's return label reaches a workflow.
        if case_kind_of(barcode) is None:
            return f"barcode {barcode!r} matches no open case"
        handle = case_handle(self._client, barcode)
        try:
            await handle.signal(CaseHandlers.warehouse_scan, scan)
        except ErasedDataError:
            # Nothing can reach a case whose customer was erased; a person decides.
            return f"barcode {barcode!r} names a case erased on its customer's request"
        except RPCError as error:
            if error.status is not RPCStatusCode.NOT_FOUND:
                raise
            return f"barcode {barcode!r} matches no open case"
        return None

    async def _signal_scan(self, barcode: str, scan: WarehouseScan) -> UnknownCaseError | None:
        problem = await self._deliver_scan(barcode, scan)
        if problem is None:
            return None
        await self._pool.execute(
            """INSERT INTO unmatched_scans (scan_id, barcode, payload, problem)
               VALUES ($1, $2, $3, $4) ON CONFLICT (scan_id) DO NOTHING""",
            scan.scan_id,
            barcode,
            scan.model_dump(mode="json"),
            problem,
        )
        return UnknownCaseError(
            f"{problem}; the scan is kept for review (R26)", field="barcode", rule=Rule.R26
        )

    async def attach_scan(self, scan_id: str, case_id: str, resolver: Resolver) -> UnmatchedScan:
        """R26: a scan kept for a person, delivered to the case a person says it belongs
        to, by the scan's own path and id: sent twice (a double submit, a retry after a
        lost answer), the case applies it once. Recorded with who, when and why, in the
        transaction that holds the scan's row, so two people cannot attach it to two
        cases. UnknownCaseError if that case cannot take it (the scan stays kept)."""
        case_kind(case_id)
        async with self._pool.acquire() as conn, conn.transaction():
            kept = await self._kept.claim_scan(conn, scan_id, case_id, resolver)
            if kept is None:  # attached there by this person already
                return await self._kept.unmatched_scan(scan_id)
            if problem := await self._deliver_scan(case_id, kept.scan):
                raise UnknownCaseError(
                    f"{problem}; the scan stays kept (R26)", field="case_id", rule=Rule.R26
                )
            await conn.execute(_INSERT_SCAN, *_scan_row(case_id, kept.scan))
            attached = await self._kept.record_attached(conn, scan_id, case_id, resolver)
        self._queues.changed()
        return attached


def _scan_row(barcode: str, scan: WarehouseScan) -> tuple[object, ...]:
    grade = scan.grade.value if scan.grade else None
    return (scan.scan_id, barcode, scan.event.value, scan.station, grade, scan.photos,
            scan.scanned_at)  # fmt: skip
