"""`make run`: the whole system on one machine.

Temporal dev server with its UI (state in .data/temporal.db), PostgreSQL (DATABASE_URL,
or an embedded server in .data/postgres), migrations, the worker, the API with the desk,
and the demo (stack/demo.py). Ctrl-C stops everything; the next run resumes where this
one stopped."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import uvicorn
from temporalio.testing import WorkflowEnvironment

from activities.policy_file import PolicyFile, PolicyFileError, load_policy_file
from api.app import create_app
from api.codec import RunCodec
from api.refusal_budget import RefusalBudget
from api.server import api_server
from desk.router import Desk, desk_settings
from infra.alarm_schedule import ensure_batch_alarm_schedule
from infra.database import ForeignSchemaError, create_pool, migrate
from infra.devstack import start_dev_server, start_embedded_postgres
from infra.gateway import CaseGateway
from infra.logs import configure_logging
from infra.outside.systems import OutsideSystems, outside_systems
from infra.security.data_converter import data_converter_for, ensure_local_key_file
from infra.security.edge_identity import (
    authenticator,
    ensure_dev_clients,
    ensure_dev_keys,
    grant_signer,
    refuse_unsafe_exposure,
)
from infra.security.grants import GrantingInterceptor
from infra.security.identity import MachineClients
from infra.settings import (
    DATA_DIR,
    EMBEDDED_POSTGRES_DIR,
    PROJECT_ROOT,
    ConfigurationError,
    Settings,
    load_settings,
)
from infra.worker_status import SdkMetrics, serve_status, status_server, worker_status_app
from stack.demo import open_demo_batches, open_demo_cases, open_demo_queues
from worker import configured_worker

log = logging.getLogger("aftersales.run")

_LOCAL_HOSTS = {"localhost", "127.0.0.1"}


async def main() -> None:
    configure_logging()
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    settings = load_settings()
    policy = load_policy_file(settings.policy_file)
    port = _local_temporal_port(settings)
    refuse_unsafe_exposure(settings)
    DATA_DIR.mkdir(exist_ok=True)
    # No set-up: the development keys for staff tokens and decision grants, and a few
    # machine clients, made once.
    ensure_dev_keys()
    credentials = ensure_dev_clients(MachineClients(settings.clients_file))
    pool = await _migrated_database(settings)
    ensure_local_key_file(settings)
    # The UI decodes through an endpoint of this run only (api/codec.py RunCodec; why it
    # is safe on loopback: docs/sealing.md): no token to mint, no setting to change.
    run_codec = RunCodec.new()
    sdk_metrics = SdkMetrics()
    env = await _dev_server(settings, pool, port, run_codec, sdk_metrics)
    outside = outside_systems(settings)  # the sandboxes unless configured otherwise
    try:
        await _serve(
            _Stack(settings, policy, pool, env, outside, run_codec, sdk_metrics, port + 1000),
            _banner(settings, port, credentials),
        )
    finally:
        await outside.aclose()
        await env.shutdown()
        await pool.close()


def _local_temporal_port(settings: Settings) -> int:
    """make run starts its own dev server, so its address must be on this machine."""
    host, _, port_text = settings.temporal_address.rpartition(":")
    if host not in _LOCAL_HOSTS:
        raise ConfigurationError(
            f"TEMPORAL_ADDRESS: make run starts its own dev server, so it must be local "
            f"(localhost:PORT), not {settings.temporal_address}"
        )
    return int(port_text)


async def _migrated_database(settings: Settings) -> asyncpg.Pool:
    if settings.uses_embedded_database:
        log.info("starting embedded PostgreSQL in %s", EMBEDDED_POSTGRES_DIR)
        start_embedded_postgres(EMBEDDED_POSTGRES_DIR)
    pool = await create_pool(settings.effective_database_url)
    applied = await migrate(pool)
    log.info("schema migrations applied now: %s", applied or "none (up to date)")
    return pool


async def _dev_server(
    settings: Settings, pool: asyncpg.Pool, port: int, run_codec: RunCodec, sdk: SdkMetrics
) -> WorkflowEnvironment:
    log.info(
        "starting Temporal dev server on %s (UI on port %d)", settings.temporal_address, port + 1000
    )
    return await start_dev_server(
        runtime=sdk.runtime,
        data_converter=data_converter_for(settings, pool),
        port=port,
        ui=True,
        database_file=DATA_DIR / "temporal.db",
        namespace=settings.temporal_namespace,
        # The in-process API is the edge: its Updates carry its grants.
        interceptors=[GrantingInterceptor(grant_signer(settings))],
        ui_codec_endpoint=run_codec.endpoint(f"http://localhost:{settings.api_port}"),
    )


@dataclass(frozen=True)
class _Stack:
    """What the worker, the API and the status port are built on, started in that order."""

    settings: Settings
    policy: PolicyFile
    pool: asyncpg.Pool
    env: WorkflowEnvironment
    outside: OutsideSystems
    run_codec: RunCodec
    sdk_metrics: SdkMetrics
    ui_port: int


async def _serve(stack: _Stack, banner: str) -> None:
    """The worker, the API and the worker's status port, with the demo, until Ctrl-C."""
    settings, pool, env, outside = stack.settings, stack.pool, stack.env, stack.outside
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    worker = configured_worker(env.client, pool, settings, outside)
    await ensure_batch_alarm_schedule(env.client, settings.task_queue)
    gateway = CaseGateway(env.client, pool, settings.task_queue, stack.policy)
    api = _api_server(stack, gateway)
    status = status_server(
        worker_status_app(stack.sdk_metrics, pool, env.client),
        settings.worker_status_host,
        settings.worker_status_port,
    )
    async with worker:
        serving = asyncio.create_task(api.serve())
        serving_status = asyncio.create_task(serve_status(status))
        await open_demo_cases(gateway)
        await open_demo_queues(gateway)
        await open_demo_batches(gateway, pool, env.client)
        print(banner, flush=True)
        await stop.wait()
        log.info("stopping")
        api.should_exit = status.should_exit = True
        await asyncio.gather(serving, serving_status)


def _api_server(stack: _Stack, gateway: CaseGateway) -> uvicorn.Server:
    settings = stack.settings
    ui_origins = [f"http://{name}:{stack.ui_port}" for name in sorted(_LOCAL_HOSTS)]
    return api_server(
        create_app(
            gateway,
            authenticator(settings),
            codec_origins=[*settings.codec_origins, *ui_origins],
            run_codec=stack.run_codec,
            refusal_budget=RefusalBudget(settings.refused_inputs_per_minute),
            desk=Desk(gateway, stack.pool, stack.policy, desk_settings(settings)),
        ),
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
    )


def _banner(settings: Settings, port: int, credentials: Path) -> str:
    return (
        "\naftersales is running\n"
        f"  Temporal UI:   http://localhost:{port + 1000}/namespaces/"
        f"{settings.temporal_namespace}/workflows\n"
        f"  Temporal gRPC: {settings.temporal_address}\n"
        f"  Desk:          http://localhost:{settings.api_port}/desk  "
        "(sign in as any name, in any role)\n"
        f"  HTTP API:      http://localhost:{settings.api_port}/docs  "
        f"(and /redoc)\n"
        f"  API status:    http://localhost:{settings.api_port}/metrics  "
        f"/healthz  /readyz\n"
        f"  Worker status: http://localhost:{settings.worker_status_port}/metrics  "
        f"/healthz  /readyz\n"
        f"  PostgreSQL:    {settings.effective_database_url}\n"
        f"  Task queue:    {settings.task_queue}\n"
        "  Try:           .venv/bin/python starter.py list\n"
        "  Staff token:   .venv/bin/python starter.py token --role agent --name ann\n"
        f"  Machines:      . {credentials.relative_to(PROJECT_ROOT)}  "
        "($SHOP, $DOCK, $CARRIER)\n"
        "Ctrl-C stops everything; `make run` again resumes.\n"
    )


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except (ConfigurationError, PolicyFileError, ForeignSchemaError) as error:
        sys.exit(f"make run: {error}")
    except KeyboardInterrupt:
        # A second Ctrl-C while stopping: stop now, quietly (the state is durable).
        sys.exit(130)
