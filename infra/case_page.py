"""What the desk shows beside the gateway's reads: on a case's page the customer messages
sent (R16 holds some until morning: sent_at says when they went), and the photos a person
needs to decide (the customer's evidence, R6; the warehouse's inspection, R26); in its
navigation, how many kept items wait. Staff only: the URLs are personal data the API's
views leave out (docs/privacy.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True)
class SentMessage:
    template: str
    due_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True)
class Photo:
    url: str
    source: str
    at: datetime


@dataclass(frozen=True)
class KeptCounts:
    """What waits for a person outside the case queues (infra/kept_for_review.py)."""

    unmatched_scans: int
    refused_inputs: int


class CasePageReads:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def messages(self, case_id: str) -> list[SentMessage]:
        rows = await self._pool.fetch(
            """SELECT template, due_at, sent_at FROM notifications WHERE case_id = $1
               ORDER BY due_at, idempotency_key""",
            case_id,
        )
        return [SentMessage(**dict(row)) for row in rows]

    async def photos(self, case_id: str) -> list[Photo]:
        rows = await self._pool.fetch(
            """SELECT jsonb_array_elements_text(details -> 'photos') AS url,
                      'customer evidence (R6)' AS source, occurred_at AS at
               FROM case_events
               WHERE case_id = $1 AND jsonb_typeof(details -> 'photos') = 'array'
               UNION ALL
               SELECT jsonb_array_elements_text(photos), 'warehouse ' || event || ' at ' || station,
                      scanned_at
               FROM scans WHERE case_id = $1
               ORDER BY at""",
            case_id,
        )
        return [Photo(**dict(row)) for row in rows]

    async def kept_counts(self) -> KeptCounts:
        """The desk's navigation counts: unresolved scans and unhandled refused input."""
        row = await self._pool.fetchrow(
            """SELECT (SELECT count(*) FROM unmatched_scans WHERE resolved_at IS NULL) AS scans,
                      (SELECT count(*) FROM refused_inputs WHERE handled_at IS NULL) AS inputs"""
        )
        assert row is not None
        return KeptCounts(unmatched_scans=row["scans"], refused_inputs=row["inputs"])
