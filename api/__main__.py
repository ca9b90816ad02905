"""`python -m api`: the HTTP API as its own process, configured like the worker."""

from __future__ import annotations

import argparse
import gc
import sys

import uvloop

from activities.policy_file import PolicyFileError, load_policy_file
from api.app import create_app
from api.refusal_budget import RefusalBudget
from api.server import api_server
from desk.router import Desk, desk_settings
from infra.database import create_pool
from infra.gateway import CaseGateway
from infra.logs import configure_logging
from infra.security.edge_identity import authenticator, grant_signer, refuse_unsafe_exposure
from infra.security.grants import GrantingInterceptor
from infra.settings import ConfigurationError, load_settings
from infra.temporal_client import connect
from infra.tracing import tracer_provider, tracing_interceptors


async def serve() -> None:
    configure_logging()
    settings = load_settings()
    refuse_unsafe_exposure(settings)
    policy = load_policy_file(settings.policy_file)
    pool = await create_pool(settings.effective_database_url)
    tracing = tracer_provider(settings, "aftersales-api")
    client = await connect(
        settings,
        pool,
        [GrantingInterceptor(grant_signer(settings)), *tracing_interceptors(tracing)],
    )
    gateway = CaseGateway(client, pool, settings.task_queue, policy)
    app = create_app(
        gateway,
        authenticator(settings),
        codec_origins=settings.codec_origins,
        refusal_budget=RefusalBudget(settings.refused_inputs_per_minute),
        desk=Desk(gateway, pool, policy, desk_settings(settings)),
        tracer_provider=tracing,
    )
    # What startup made and kept (the app, its schemas, the SDK's and the libraries'
    # modules) lives as long as the process: frozen out of the collector, so its full
    # collections scan only what requests leave behind (a case's cached data key...).
    gc.collect()
    gc.freeze()
    # Requests are logged by the proxy in front; refused input is kept in PostgreSQL.
    server = api_server(app, host=settings.api_host, port=settings.api_port, access_log=False)
    try:
        await server.serve()
    finally:
        await pool.close()


def cli() -> None:
    """`aftersales-api` (or `python -m api`): configured by environment only."""
    argparse.ArgumentParser(
        prog="aftersales-api",
        description=f"{__doc__} Configured by environment variables: docs/operations.md.",
    ).parse_args()
    try:
        # uvicorn picks uvloop only when it creates the loop itself; here we do.
        uvloop.run(serve())
    except (ConfigurationError, PolicyFileError, ConnectionError) as error:
        sys.exit(f"api: {error}")
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    cli()
