"""The system under measurement, as in production: the Temporal dev server, PostgreSQL,
the worker and the HTTP API each in a process of its own, so their memory can be read
and the API does not share an event loop with the worker."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

from activities.notifications import RecordingNotifier
from activities.payments import PaymentProvider, SandboxPaymentProvider
from bench.measure import until
from domain.case import Role
from infra.database import create_pool, migrate
from infra.devstack import (
    DEV_SERVER_HTTP_API_CLOSED,
    start_embedded_postgres,
    start_time_skipping_server,
    temporal_cli,
)
from infra.search_attribute_setup import register_search_attributes
from infra.security.codec import KeyRing
from infra.security.data_converter import sealed_data_converter
from tests.identities import IDENTITIES, TRUSTING_EDGE
from tests.processes import free_port, start_process
from worker import build_worker

# The tests' identities (keys and machine clients in a temporary folder), so the API
# process authenticates the load generator as it would a real service and scanner.
SERVICE = IDENTITIES.bearer(Role.SERVICE, "bench-service")
SCANNER = IDENTITIES.bearer(Role.WAREHOUSE, "bench-dock")
TASK_QUEUE = "bench"
# The stack's payload codec keys (one run's: its cases are thrown away with it).
CODEC_KEYS = KeyRing.new_key_spec("bench-1")


def bench_data_converter(pool: asyncpg.Pool) -> DataConverter:
    return sealed_data_converter(KeyRing.parse(CODEC_KEYS), pool)


@dataclass
class Stack:
    folder: Path
    database_url: str
    pool: asyncpg.Pool
    server: subprocess.Popen[str]
    server_address: str
    client: Client
    api: aiohttp.ClientSession
    processes: dict[str, subprocess.Popen[str]] = field(default_factory=dict)

    def env(self, **extra: str) -> dict[str, str]:
        return (
            os.environ
            | extra
            | {
                "TEMPORAL_ADDRESS": self.server_address,
                "DATABASE_URL": self.database_url,
                "AFTERSALES_TASK_QUEUE": TASK_QUEUE,
                **IDENTITIES.environment(),
                "AFTERSALES_CODEC_KEYS": CODEC_KEYS,
                "AFTERSALES_SANDBOX_PAYMENTS_JOURNAL": str(self.folder / "payments.jsonl"),
            }
        )

    async def post(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> None:
        """POST to the API; an error answer raises."""
        async with self.api.post(path, json=body, headers=headers) as response:
            response.raise_for_status()
            await response.read()

    async def until_cases(self, prefix: str, status: str, count: int, *, within_s: float) -> None:
        """Until `count` cases whose order ids start with `prefix` show `status` in the read
        model (the worker has taken them that far)."""

        async def reached() -> bool:
            found: int = await self.pool.fetchval(
                "SELECT count(*) FROM cases WHERE order_id LIKE $1 AND status = $2",
                f"{prefix}-%",
                status,
            )
            return found == count

        await until(reached, every_s=0.3, within_s=within_s)

    def start_worker(self) -> None:
        if "worker" in self.processes:
            return
        self.processes["worker"] = start_process(
            [sys.executable, "worker.py"], self.env(), self.folder / "worker.log"
        )[0]

    def stop(self, name: str) -> None:
        process = self.processes.pop(name)
        process.terminate()
        process.wait(timeout=30)

    def cpu_s(self, name: str) -> float:
        """CPU time one of the stack's processes has used so far, every thread's."""
        stat = Path(f"/proc/{self.processes[name].pid}/stat").read_text()
        user, system = stat.rsplit(")", 1)[1].split()[11:13]
        return (int(user) + int(system)) / os.sysconf("SC_CLK_TCK")

    def rss_kib(self, name: str) -> int:
        """Resident memory of one of the stack's processes (`server`, `worker`, `api`)."""
        pid = self.server.pid if name == "server" else self.processes[name].pid
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise LookupError(f"no VmRSS for {name}")


@asynccontextmanager
async def running_stack(folder: Path, *, server_file: Path | None = None) -> AsyncIterator[Stack]:
    """With `server_file` the dev server keeps its state in that SQLite file."""
    database_url = start_embedded_postgres(folder / "pg", delete_on_exit=True)
    pool = await create_pool(database_url)
    await migrate(pool)
    port = free_port()
    server = start_process(
        [temporal_cli(), "server", "start-dev", "--headless", "--port", str(port),
         "--http-port", str(free_port()), "--metrics-port", str(free_port()),
         "--log-level", "error", *DEV_SERVER_HTTP_API_CLOSED,
         *(["--db-filename", str(server_file)] if server_file else [])],
        dict(os.environ),
        folder / "server.log",
    )[0]  # fmt: skip
    address = f"127.0.0.1:{port}"
    client = await _connect(address, bench_data_converter(pool))
    await register_search_attributes(client)
    api_port = free_port()
    # The load generator: aiohttp costs a fraction of httpx's CPU per request, CPU the
    # two shared cores would otherwise take from the system under measurement.
    async with aiohttp.ClientSession(
        base_url=f"http://127.0.0.1:{api_port}",
        timeout=aiohttp.ClientTimeout(total=30),
        # Idle connections are dropped before uvicorn's 5 s keep-alive closes them, so a
        # request never goes out on a connection the server is closing.
        connector=aiohttp.TCPConnector(limit=50, keepalive_timeout=2),
    ) as api:
        stack = Stack(folder, database_url, pool, server, address, client, api)
        stack.processes["api"] = start_process(
            [sys.executable, "-m", "api"],
            stack.env(AFTERSALES_API_PORT=str(api_port)),
            folder / "api.log",
        )[0]
        await until_up(api)
        try:
            yield stack
        finally:
            for name in list(stack.processes):
                stack.stop(name)
            server.terminate()
            server.wait(timeout=30)
            await pool.close()


async def _connect(address: str, data_converter: DataConverter) -> Client:
    for _ in range(300):
        try:
            return await Client.connect(address, data_converter=data_converter)
        except RuntimeError:
            await asyncio.sleep(0.1)
    raise TimeoutError(f"no Temporal dev server at {address}")


async def until_up(api: aiohttp.ClientSession) -> None:
    for _ in range(300):
        try:
            async with api.get("/docs") as response:
                await response.read()
            return
        except aiohttp.ClientConnectionError:
            await asyncio.sleep(0.1)
    raise TimeoutError("the API did not come up")


@asynccontextmanager
async def scratch_database(folder: Path) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(start_embedded_postgres(folder, delete_on_exit=True))
    await migrate(pool)
    try:
        yield pool
    finally:
        await pool.close()


@asynccontextmanager
async def time_skipping_worker(
    pool: asyncpg.Pool, payments: PaymentProvider | None = None
) -> AsyncIterator[tuple[WorkflowEnvironment, str]]:
    """A fresh time-skipping test server with a worker on it, for cases that last months.
    One server per scenario: its clock is shared, and another scenario's leftover
    workflows would hold it. `payments`: the provider the scenarios expect (one that
    declines where a scenario is about a declined payment)."""
    env = await start_time_skipping_server(bench_data_converter(pool), interceptors=[TRUSTING_EDGE])
    worker = build_worker(
        env.client, pool=pool, task_queue=TASK_QUEUE,
        payments=payments or SandboxPaymentProvider(),
        notifier=RecordingNotifier(), grants=IDENTITIES.verifier,
    )  # fmt: skip
    try:
        async with worker:
            yield env, TASK_QUEUE
    finally:
        await env.shutdown()
