"""What the system kept for a person instead of acting on it, and that person's answer:
scans that matched no open case (`unmatched_scans`, R26) and input refused at an edge
(`refused_inputs`). Each is resolved once, with who, in which role, when and why; a
resolution sent again (a double submit) answers the row as it was resolved, another one
is refused. Attaching a scan to a case also delivers it (infra/gateway.py
`attach_scan`, which uses `claim_scan` here inside its transaction)."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from pydantic import AwareDatetime, BaseModel, Field, TypeAdapter

from domain.case import Role, WarehouseScan
from domain.errors import FieldError
from domain.rules import Rule


class Resolution(StrEnum):
    ATTACHED = "attached"
    DISMISSED = "dismissed"


class UnknownKeptItemError(FieldError, LookupError):
    pass


class AlreadyResolvedError(FieldError, ValueError):
    """Someone else resolved it first, or the same person otherwise."""


class Resolver(BaseModel):
    """Who resolves, as the edge proved them, and why they did."""

    actor: str
    role: Role
    reason: str


class UnmatchedScan(BaseModel):
    scan_id: str
    barcode: str
    problem: str
    received_at: datetime
    scan: WarehouseScan
    resolution: Resolution | None
    attached_case_id: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolved_role: Role | None
    resolution_reason: str | None

    @classmethod
    def of(cls, row: asyncpg.Record) -> UnmatchedScan:
        fields = dict(row)
        return cls(scan=WarehouseScan.model_validate(fields.pop("payload")), **fields)


class RefusedInput(BaseModel):
    id: int
    source: str
    operation: str
    payload: str
    errors: str
    received_at: datetime
    handled_at: datetime | None
    handled_by: str | None
    handled_role: Role | None
    handled_reason: str | None

    @classmethod
    def of(cls, row: asyncpg.Record) -> RefusedInput:
        fields = dict(row)
        return cls(errors=fields.pop("errors").get("message", ""), **fields)


Item = TypeVar("Item", bound=BaseModel)


class KeptPage(BaseModel, Generic[Item]):
    items: list[Item]
    next_cursor: str | None


class InvalidKeptCursorError(ValueError):
    pass


def _encode(at: datetime, key: str | int) -> str:
    raw = json.dumps([at.isoformat(), key]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# Where a page ended: the last row's receipt time and key (a scan id, a refused input's id).
# A scan id as stored: PostgreSQL text holds no NUL, so a forged one stops here.
_SCAN_CURSOR = TypeAdapter(tuple[AwareDatetime, Annotated[str, Field(pattern=r"^[^\x00]*$")]])
_INPUT_CURSOR = TypeAdapter(tuple[AwareDatetime, int])


def _decode(cursor: str, shape: TypeAdapter[tuple[datetime, Any]]) -> tuple[datetime, Any]:
    try:
        return shape.validate_json(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError) as error:  # pydantic's ValidationError included
        raise InvalidKeptCursorError("not a cursor this API gave out") from error


_SCAN_COLUMNS = """scan_id, barcode, problem, received_at, payload, resolution, attached_case_id,
                   resolved_at, resolved_by, resolved_role, resolution_reason"""
_INPUT_COLUMNS = """id, source, operation, payload, errors, received_at, handled_at, handled_by,
                    handled_role, handled_reason"""


class KeptForReview:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def unmatched_scans(
        self, *, unresolved_only: bool = True, after: str | None = None, limit: int = 50
    ) -> KeptPage[UnmatchedScan]:
        """Oldest first (the longest waiting parcel first), `limit` at a time."""
        rows = await self._page(
            "unmatched_scans", _SCAN_COLUMNS, "scan_id", "resolved_at", unresolved_only,
            None if after is None else _decode(after, _SCAN_CURSOR), limit,
        )  # fmt: skip
        items = [UnmatchedScan.of(r) for r in rows[:limit]]
        cursor = _encode(items[-1].received_at, items[-1].scan_id) if len(rows) > limit else None
        return KeptPage(items=items, next_cursor=cursor)

    async def refused_inputs(
        self, *, unhandled_only: bool = True, after: str | None = None, limit: int = 50
    ) -> KeptPage[RefusedInput]:
        rows = await self._page(
            "refused_inputs", _INPUT_COLUMNS, "id", "handled_at", unhandled_only,
            None if after is None else _decode(after, _INPUT_CURSOR), limit,
        )  # fmt: skip
        items = [RefusedInput.of(r) for r in rows[:limit]]
        cursor = _encode(items[-1].received_at, items[-1].id) if len(rows) > limit else None
        return KeptPage(items=items, next_cursor=cursor)

    async def _page(
        self, table: str, columns: str, key: str, resolved: str, open_only: bool,
        after: tuple[datetime, Any] | None, limit: int,
    ) -> list[asyncpg.Record]:  # fmt: skip
        conditions, args = [f"{resolved} IS NULL"] if open_only else [], list[Any]()
        if after is not None:
            args += after
            conditions.append(f"(received_at, {key}) > ($1, $2)")
        where = " AND ".join(conditions) or "true"
        return await self._pool.fetch(
            f"SELECT {columns} FROM {table} WHERE {where} ORDER BY received_at, {key} "
            f"LIMIT {limit + 1}",
            *args,
        )

    async def unmatched_scan(self, scan_id: str) -> UnmatchedScan:
        row = await self._pool.fetchrow(
            f"SELECT {_SCAN_COLUMNS} FROM unmatched_scans WHERE scan_id = $1", scan_id
        )
        if row is None:
            raise UnknownKeptItemError(f"no unmatched scan {scan_id!r}", field="scan_id")
        return UnmatchedScan.of(row)

    async def claim_scan(
        self, conn: PoolConnectionProxy, scan_id: str, case_id: str, resolver: Resolver
    ) -> UnmatchedScan | None:
        """In the caller's transaction: the scan locked for attaching to `case_id`; None
        if it already was attached there by this resolver (nothing more to do)."""
        row = await conn.fetchrow(
            f"SELECT {_SCAN_COLUMNS} FROM unmatched_scans WHERE scan_id = $1 FOR UPDATE", scan_id
        )
        if row is None:
            raise UnknownKeptItemError(f"no unmatched scan {scan_id!r}", field="scan_id")
        scan = UnmatchedScan.of(row)
        if scan.resolution is None:
            return scan
        if _same_scan_resolution(scan, Resolution.ATTACHED, case_id, resolver):
            return None
        raise _resolved_before(scan)

    async def record_attached(
        self, conn: PoolConnectionProxy, scan_id: str, case_id: str, resolver: Resolver
    ) -> UnmatchedScan:
        row = await conn.fetchrow(
            f"""UPDATE unmatched_scans SET resolution = $2, attached_case_id = $3,
                   resolved_at = now(), resolved_by = $4, resolved_role = $5,
                   resolution_reason = $6
               WHERE scan_id = $1 RETURNING {_SCAN_COLUMNS}""",
            scan_id, Resolution.ATTACHED.value, case_id, resolver.actor, resolver.role,
            resolver.reason,
        )  # fmt: skip
        if row is None:
            raise UnknownKeptItemError(f"no unmatched scan {scan_id!r}", field="scan_id")
        return UnmatchedScan.of(row)

    async def dismiss_scan(self, scan_id: str, resolver: Resolver) -> UnmatchedScan:
        row = await self._pool.fetchrow(
            f"""UPDATE unmatched_scans SET resolution = $2, resolved_at = now(),
                   resolved_by = $3, resolved_role = $4, resolution_reason = $5
               WHERE scan_id = $1 AND resolved_at IS NULL RETURNING {_SCAN_COLUMNS}""",
            scan_id, Resolution.DISMISSED.value, resolver.actor, resolver.role, resolver.reason,
        )  # fmt: skip
        if row is not None:
            return UnmatchedScan.of(row)
        scan = await self.unmatched_scan(scan_id)
        if _same_scan_resolution(scan, Resolution.DISMISSED, None, resolver):
            return scan
        raise _resolved_before(scan)

    async def mark_handled(self, input_id: int, resolver: Resolver) -> RefusedInput:
        row = await self._pool.fetchrow(
            f"""UPDATE refused_inputs SET handled_at = now(), handled_by = $2,
                   handled_role = $3, handled_reason = $4
               WHERE id = $1 AND handled_at IS NULL RETURNING {_INPUT_COLUMNS}""",
            input_id, resolver.actor, resolver.role, resolver.reason,
        )  # fmt: skip
        if row is not None:
            return RefusedInput.of(row)
        row = await self._pool.fetchrow(
            f"SELECT {_INPUT_COLUMNS} FROM refused_inputs WHERE id = $1", input_id
        )
        if row is None:
            raise UnknownKeptItemError(f"no refused input {input_id}", field="input_id")
        kept = RefusedInput.of(row)
        if (kept.handled_by, kept.handled_reason) == (resolver.actor, resolver.reason):
            return kept
        raise AlreadyResolvedError(
            f"refused input {input_id} was already marked handled by {kept.handled_by} "
            f"({kept.handled_role}) at {kept.handled_at:%Y-%m-%d %H:%M} UTC",
            field="input_id",
        )


def _same_scan_resolution(
    scan: UnmatchedScan, resolution: Resolution, case_id: str | None, resolver: Resolver
) -> bool:
    return (scan.resolution, scan.attached_case_id, scan.resolved_by, scan.resolution_reason) == (
        resolution, case_id, resolver.actor, resolver.reason,
    )  # fmt: skip


def _resolved_before(scan: UnmatchedScan) -> AlreadyResolvedError:
    where = f" to case {scan.attached_case_id}" if scan.attached_case_id else ""
    at = f"{scan.resolved_at:%Y-%m-%d %H:%M} UTC" if scan.resolved_at else "earlier"
    return AlreadyResolvedError(
        f"scan {scan.scan_id} was already {scan.resolution}{where} by "
        f"{scan.resolved_by} ({scan.resolved_role}) at {at} (R26)",
        field="scan_id",
        rule=Rule.R26,
    )
