"""The aftersales worker: runs case workflows and their activities on one task queue."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

import asyncpg
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.analytics import AnalyticsActivities
from activities.carrier import CarrierActivities, CarrierGateway, SandboxCarrier
from activities.ledger import LedgerActivities
from activities.notifications import NotificationActivities, Notifier
from activities.payments import PaymentActivities, PaymentProvider
from activities.surveys import SurveyActivities
from activities.warehouse import SandboxWarehouse, Warehouse, WarehouseActivities
from infra.alarm_schedule import batch_alarm_schedule_missing
from infra.database import ForeignSchemaError, create_pool, migrate
from infra.logs import configure_logging
from infra.outside.systems import OutsideSystems, outside_systems
from infra.security.edge_identity import grant_verifier
from infra.security.grants import GrantCheckInterceptor, GrantVerifier
from infra.settings import (
    DEFAULT_MAX_CACHED_WORKFLOWS,
    DEFAULT_POLICY_FILE,
    ConfigurationError,
    Settings,
    load_settings,
)
from infra.temporal_client import connect
from infra.tracing import tracer_provider, tracing_interceptors
from infra.worker_status import SdkMetrics, serve_status, status_server, worker_status_app
from workflows.batch_alarm import BatchAlarm
from workflows.carrier_claim import CarrierClaim
from workflows.damage_claim_case import DamageClaimCase
from workflows.exchange_case import ExchangeCase
from workflows.return_case import ReturnCase
from workflows.survey import SatisfactionSurvey

log = logging.getLogger("aftersales.worker")

# The pure domain and the activity contracts are deterministic; passing them through
# keeps one class per model, so pydantic accepts a Money built inside a workflow.
STRICT_WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules("domain", "activities")
)
# What the worker runs: the workflow modules passed through as well, so they are imported
# once instead of compiled again for every case (bench/README: twice the cases per second
# and a fraction of the memory per cached case). The strict runner above still re-imports
# them under the sandbox's restrictions whenever the recorded histories are replayed
# (tests/e2e/test_replay.py), which is where a non-deterministic call would be caught.
WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules(
        "domain", "activities", "workflows"
    )
)
WORKFLOWS = [
    ReturnCase, ExchangeCase, DamageClaimCase, CarrierClaim, SatisfactionSurvey, BatchAlarm,
]  # fmt: skip


def build_worker(
    client: Client,
    *,
    pool: asyncpg.Pool,
    task_queue: str,
    payments: PaymentProvider,
    notifier: Notifier,
    grants: GrantVerifier,
    carrier: CarrierGateway | None = None,
    warehouse: Warehouse | None = None,
    max_cached_workflows: int = DEFAULT_MAX_CACHED_WORKFLOWS,
    policy_file: Path = DEFAULT_POLICY_FILE,
) -> Worker:
    ledger = LedgerActivities(pool)
    money = PaymentActivities(pool, payments)
    messages = NotificationActivities(pool, notifier)
    claims = CarrierActivities(pool, carrier or SandboxCarrier())
    parcels = WarehouseActivities(pool, warehouse or SandboxWarehouse())
    surveys = SurveyActivities(pool)
    analytics = AnalyticsActivities(pool, notifier, policy_file)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        workflow_runner=WORKFLOW_RUNNER,
        activities=[
            ledger.record_step,
            money.issue_refund,
            money.charge,
            money.settle_elsewhere,
            messages.notify_customer,
            claims.file_claim,
            claims.chase,
            claims.record_step,
            claims.intercept,
            parcels.ship,
            parcels.check_stock,
            parcels.cancel_shipment,
            surveys.record,
            analytics.run_batch_alarm,
        ],
        max_cached_workflows=max_cached_workflows,
        # Every Update must carry the authenticated edge's grant (infra/security/grants.py).
        interceptors=[GrantCheckInterceptor(grants)],
    )


def configured_worker(
    client: Client, pool: asyncpg.Pool, settings: Settings, outside: OutsideSystems
) -> Worker:
    """The worker as its settings describe it: `worker.py` and `make run` build it alike."""
    return build_worker(
        client,
        pool=pool,
        task_queue=settings.task_queue,
        payments=outside.payments,
        notifier=outside.notifier,
        carrier=outside.carrier,
        warehouse=outside.warehouse,
        grants=grant_verifier(settings),
        policy_file=settings.policy_file,
        max_cached_workflows=settings.max_cached_workflows,
    )


async def main() -> None:
    configure_logging()
    settings = load_settings()
    pool = await create_pool(settings.effective_database_url)
    await migrate(pool)
    sdk_metrics = SdkMetrics()
    tracing = tracing_interceptors(tracer_provider(settings, "aftersales-worker"))
    client = await connect(settings, pool, tracing, runtime=sdk_metrics.runtime)
    # The sandboxes unless configured to the merchant's services (docs/operations.md).
    outside = outside_systems(settings)
    log.info("outside systems: %s", ", ".join(f"{k} {v}" for k, v in outside.where.items()))
    worker = configured_worker(client, pool, settings, outside)
    # Set-up work registers the schedule (`starter.py setup`); without it only the R24
    # alarm stops, never the cases, so the worker says so and polls its task queue.
    if missing := await batch_alarm_schedule_missing(client):
        log.warning("the R24 batch alarm will not run: %s", missing)
    status = status_server(
        worker_status_app(sdk_metrics, pool, client),
        settings.worker_status_host,
        settings.worker_status_port,
    )
    log.info(
        "status on http://%s:%d (/metrics, /healthz, /readyz)",
        settings.worker_status_host,
        settings.worker_status_port,
    )
    # Ctrl-C or SIGTERM (`docker stop`): the worker finishes its tasks in hand, then exits.
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    serving = asyncio.create_task(serve_status(status))
    running = asyncio.create_task(worker.run())
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not running.done():
            log.info("stopping")
            await worker.shutdown()
        await running  # a worker that failed on its own says why
    finally:
        stopping.cancel()
        status.should_exit = True
        await serving
        await outside.aclose()
        await pool.close()


def cli() -> None:
    """`aftersales-worker` (or `python worker.py`): configured by environment only."""
    argparse.ArgumentParser(
        prog="aftersales-worker",
        description=f"{__doc__} Configured by environment variables: docs/operations.md.",
    ).parse_args()
    try:
        asyncio.run(main())
    except (ConfigurationError, ForeignSchemaError) as error:
        sys.exit(f"worker: {error}")
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    cli()
