"""The edge every way in shares (the API, the desk, the CLI, the demo): validated input
in, Temporal and the read model behind, no business rules here. Each job is done in its
own module, and the gateway holds them together for the ways in:

| job | module |
|---|---|
| opening a case (R1, R2) | infra/intake.py |
| news and decisions for a case, a carrier's answer | infra/case_messaging.py |
| warehouse scans (R26) | infra/scans.py |
| reading a case: its view, ledger, the case list | infra/case_reads.py |
| refused input, kept for a person | infra/refused_inputs.py |
| erasure (GDPR art. 17) | infra/security/privacy.py |
| analytics (R24), queues, kept items, notes | activities/analytics_store.py, |
| | infra/case_queues.py, kept_for_review.py, case_notes.py |
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
from temporalio.client import Client

from activities.analytics_store import AnalyticsStore
from activities.policy_file import PolicyFile
from domain.analytics import Report, ReportFilters
from domain.case import Role
from domain.view import CaseNote
from infra.business_metrics import BusinessFigures
from infra.case_errors import erased_case
from infra.case_messaging import CaseMessaging
from infra.case_notes import CaseNotes
from infra.case_queues import CaseQueues
from infra.case_reads import CaseReads
from infra.health import Readiness, readiness
from infra.intake import CaseIntake
from infra.kept_for_review import KeptForReview
from infra.refused_inputs import RefusedInputs
from infra.scans import Scans
from infra.security.blind_index import TrackingNumberIndex
from infra.security.codec import SealingCodec
from infra.security.identity import Caller
from infra.security.privacy import ErasureReport, erase_customer


class CaseGateway:
    def __init__(
        self, client: Client, pool: asyncpg.Pool, task_queue: str, policy: PolicyFile
    ) -> None:
        self._client = client
        self._pool = pool
        self._policy = policy
        # R24: analytics reads and writes PostgreSQL only; no workflow is involved.
        self.analytics = AnalyticsStore(pool)
        # /metrics' business figures, read from the read model at scrape time.
        self.figures = BusinessFigures(pool)
        self._codec = codec = _sealing_codec(client)
        tracking = TrackingNumberIndex(codec.ring)
        # The queues, what is kept for a person, and notes: PostgreSQL only, likewise.
        self.queues = CaseQueues(pool, tracking)
        self.kept = KeptForReview(pool)
        self.notes = CaseNotes(pool)
        refused = RefusedInputs(pool)
        self._reads = reads = CaseReads(client, pool, task_queue, self.notes, self.queues)
        intake = CaseIntake(client, pool, task_queue, policy, reads, codec)
        messaging = CaseMessaging(client, pool, tracking, self.queues, refused)
        scans = Scans(client, pool, self.kept, self.queues)
        # The ways in call each job through the gateway, by the verb they know it by.
        self.accept_case = intake.accept_case
        self.open_case = intake.open_case
        self.received_now = intake.received_now
        self.status = reads.status
        self.arbitration_view = reads.arbitration_view
        self.ledger = reads.ledger
        self.list_cases = reads.list_cases
        self.tell = messaging.tell
        self.decide = messaging.decide
        self.shipped_back = messaging.shipped_back
        self.carrier_response = messaging.carrier_response
        self.scan = scans.scan
        self.scan_batch = scans.scan_batch
        self.attach_scan = scans.attach_scan
        self.record_refused_input = refused.record
        self.has_refused_input = refused.any_from

    async def readiness(self) -> Readiness:
        """PostgreSQL and Temporal reachable, migrations applied (/readyz)."""
        return await readiness(self._pool, self._client)

    async def report(self, filters: ReportFilters) -> Report:
        """R24's report now; SLA deadlines as the policy file's defaults set them."""
        return await self.analytics.report(
            filters, self._policy.resolve("general"), datetime.now(UTC)
        )

    @property
    def payload_codec(self) -> SealingCodec:
        """The client's codec: the codec server (api/codec.py) seals and opens with it."""
        return self._codec

    async def add_note(self, case_id: str, note_id: str, body: str, author: Caller) -> CaseNote:
        """An internal note (infra/case_notes.py). An erased case takes none: erasure
        removed its free text once, and a note written after it (it may name the
        customer) would stay in plaintext with no erasure left to come."""
        if await self._reads.erased(case_id):
            raise erased_case(case_id)
        return await self.notes.add(case_id, note_id, body, author)

    async def erase_customer(self, customer_id: str, *, actor: str, role: Role) -> ErasureReport:
        """GDPR art. 17 (infra/security/privacy.py); CustomerHasOpenCasesError while a case
        runs. This process (the codec server's) stops opening the cases' payloads at once;
        other processes when their cached keys are next checked
        (infra/security/data_keys.py)."""
        report = await erase_customer(self._client, self._pool, customer_id, actor=actor, role=role)
        self._codec.forget(report.cases)
        return report


def _sealing_codec(client: Client) -> SealingCodec:
    codec = client.data_converter.payload_codec
    if not isinstance(codec, SealingCodec):
        raise RuntimeError(
            "the Temporal client does not seal payloads (infra/security/data_converter.py)"
        )
    return codec
