"""Liveness and readiness, one answer shape for the API and the worker's status port.

Alive: the process answers. Ready: PostgreSQL answers, every migration this code knows is
applied, and Temporal's frontend says it is serving. A load balancer or an orchestrator
sends traffic (or waits to) only to a ready process."""

from __future__ import annotations

import asyncio
from enum import StrEnum

import asyncpg
from pydantic import BaseModel
from temporalio.client import Client
from temporalio.service import RPCError

from infra.database import pending_migrations

CHECK_TIMEOUT_S = 2.0


class Dependency(StrEnum):
    POSTGRESQL = "postgresql"
    MIGRATIONS = "migrations"
    TEMPORAL = "temporal"


class Readiness(BaseModel):
    ready: bool
    # Per dependency: "ok" or why not (no personal data: addresses and errors only).
    checks: dict[Dependency, str]


async def _postgresql(pool: asyncpg.Pool) -> dict[Dependency, str]:
    try:
        pending = await asyncio.wait_for(pending_migrations(pool), CHECK_TIMEOUT_S)
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        reason = f"unreachable: {type(error).__name__}"
        return {Dependency.POSTGRESQL: reason, Dependency.MIGRATIONS: "unknown"}
    return {
        Dependency.POSTGRESQL: "ok",
        Dependency.MIGRATIONS: f"pending: {', '.join(pending)}" if pending else "ok",
    }


async def _temporal(client: Client) -> str:
    try:
        serving = await asyncio.wait_for(client.service_client.check_health(), CHECK_TIMEOUT_S)
    except (RPCError, RuntimeError, TimeoutError) as error:
        return f"unreachable: {type(error).__name__}"
    return "ok" if serving else "not serving"


async def readiness(pool: asyncpg.Pool, client: Client) -> Readiness:
    database, temporal = await asyncio.gather(_postgresql(pool), _temporal(client))
    checks = {**database, Dependency.TEMPORAL: temporal}
    return Readiness(ready=all(v == "ok" for v in checks.values()), checks=checks)
