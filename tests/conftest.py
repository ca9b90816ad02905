"""Real services for the tests: PostgreSQL (DATABASE_URL's server, in a database of its
own, or an embedded one), the Temporal time-skipping server and the dev server."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

from activities.carrier import SandboxCarrier
from activities.notifications import RecordingNotifier
from activities.payments import SandboxPaymentProvider
from activities.policy_file import load_policy_file
from activities.warehouse import SandboxWarehouse
from domain.case import (
    UNDELIVERED,
    CaseKind,
    Channel,
    Customer,
    ExchangeItem,
    MissingPart,
    OpenCaseRequest,
    Reason,
)
from domain.money import Money
from infra.database import create_pool, migrate
from infra.devstack import start_dev_server, start_embedded_postgres, start_time_skipping_server
from infra.gateway import CaseGateway
from infra.security.codec import KeyRing
from infra.security.data_converter import sealed_data_converter
from infra.settings import DEFAULT_POLICY_FILE
from tests.identities import IDENTITIES, TRUSTING_EDGE
from worker import build_worker

T = TypeVar("T")

# The `browser` fixture (Playwright driving Debian's chromium) for every browser test.
pytest_plugins = ["tests.browser"]

# One key ring per test session; the worker and API processes some tests start inherit it.
os.environ.setdefault("AFTERSALES_CODEC_KEYS", KeyRing.new_key_spec("test-1"))


# The layers, one folder each (docs/testing.md): a test's folder is its marker, and a
# fast layer's test may not ask for a fixture that starts what the layer runs without.
LAYERS_WITHOUT: dict[str, set[str]] = {
    "unit": {"database_url", "time_skipping_env", "dev_env", "browser"},
    "workflows": {"database_url", "dev_env", "browser"},
    "integration": set(),
    "e2e": set(),
}


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        layer = item.path.relative_to(here).parts[0]
        if layer not in LAYERS_WITHOUT:
            raise pytest.UsageError(
                f"{item.nodeid}: a test belongs in tests/{{{','.join(LAYERS_WITHOUT)}}}"
            )
        needed = LAYERS_WITHOUT[layer] & set(getattr(item, "fixturenames", ()))
        if needed:
            raise pytest.UsageError(f"{item.nodeid}: tests/{layer} runs without {sorted(needed)}")
        item.add_marker(getattr(pytest.mark, layer))


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    shared = os.environ.get("DATABASE_URL")
    if not shared:
        yield start_embedded_postgres(
            Path(tmp_path_factory.mktemp("postgres")) / "data", delete_on_exit=True
        )
        return
    name = f"aftersales_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(shared, f'CREATE DATABASE "{name}"'))
    yield urlunsplit(urlsplit(shared)._replace(path=f"/{name}"))
    asyncio.run(_admin(shared, f'DROP DATABASE "{name}" WITH (FORCE)'))


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    db = await create_pool(database_url)
    await migrate(db)
    yield db
    await db.close()


@pytest.fixture(scope="session")
def key_ring() -> KeyRing:
    return KeyRing.parse(os.environ["AFTERSALES_CODEC_KEYS"])


@pytest.fixture(scope="session")
def data_converter(key_ring: KeyRing, pool: asyncpg.Pool) -> DataConverter:
    return sealed_data_converter(key_ring, pool)


@pytest.fixture
async def time_skipping_env(data_converter: DataConverter) -> AsyncIterator[WorkflowEnvironment]:
    # One server per test (it starts in ~0.1 s): the clock is global to a server, and a
    # workflow left waiting by an earlier test would hold it back.
    env = await start_time_skipping_server(data_converter, interceptors=[TRUSTING_EDGE])
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_env(data_converter: DataConverter) -> AsyncIterator[WorkflowEnvironment]:
    env = await start_dev_server(data_converter=data_converter, interceptors=[TRUSTING_EDGE])
    yield env
    await env.shutdown()


@pytest.fixture
def payments() -> SandboxPaymentProvider:
    return SandboxPaymentProvider()


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def carrier() -> SandboxCarrier:
    return SandboxCarrier()


@pytest.fixture
def warehouse() -> SandboxWarehouse:
    return SandboxWarehouse()


@pytest.fixture
def task_queue() -> str:
    return f"aftersales-test-{uuid.uuid4().hex[:8]}"


WorkerFactory = Callable[[Client], Any]


@pytest.fixture
def running_worker(
    pool: asyncpg.Pool,
    task_queue: str,
    payments: SandboxPaymentProvider,
    notifier: RecordingNotifier,
    carrier: SandboxCarrier,
    warehouse: SandboxWarehouse,
) -> Callable[[Client], Any]:
    """`async with running_worker(client):` runs the real worker (real activities)."""

    @asynccontextmanager
    async def run(client: Client) -> AsyncIterator[None]:
        async with build_worker(
            client,
            pool=pool,
            task_queue=task_queue,
            payments=payments,
            notifier=notifier,
            grants=IDENTITIES.verifier,
            carrier=carrier,
            warehouse=warehouse,
        ):
            yield

    return run


@pytest.fixture
async def api(
    dev_env: WorkflowEnvironment, pool: asyncpg.Pool, task_queue: str, running_worker: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """The HTTP API in this process with a real worker behind it (modules with other
    needs define their own `api`)."""
    # tests.helpers imports this module: imported here, not at the top.
    from tests.helpers import api_client

    gateway = CaseGateway(dev_env.client, pool, task_queue, load_policy_file(DEFAULT_POLICY_FILE))
    async with running_worker(dev_env.client), api_client(gateway) as client:
        yield client


@pytest.fixture
async def site(
    dev_env: WorkflowEnvironment, pool: asyncpg.Pool, task_queue: str, running_worker: Any
) -> AsyncIterator[Any]:
    """The desk served by uvicorn with a real worker behind it (tests/desk_site.py)."""
    # tests.desk_site imports this module: imported here, not at the top.
    from tests.desk_site import desk_site

    async with running_worker(dev_env.client), desk_site(dev_env, pool, task_queue) as served:
        yield served


def eur(minor: int) -> Money:
    return Money(amount_minor=minor, currency="EUR")


def a_request(
    *,
    delivered_at: datetime | None = None,
    requested_after: timedelta = timedelta(days=2),
    paid_minor: int = 5990,
    request_id: str = "r1",
    order_id: str | None = None,
    reason: Reason = Reason.CHANGED_MIND,
    time_zone: str = "Europe/Berlin",
    kind: CaseKind = CaseKind.RETURN,
    carrier: str | None = None,
    exchange_for: ExchangeItem | None = None,
    missing_part: MissingPart | None = None,
) -> OpenCaseRequest:
    delivered = delivered_at or datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    was_delivered = reason not in UNDELIVERED
    return OpenCaseRequest(
        order_id=order_id or f"O-{uuid.uuid4().hex[:10]}",
        line_id="1",
        request_id=request_id,
        kind=kind,
        reason=reason,
        carrier=carrier,
        exchange_for=exchange_for,
        channel=Channel.APP,
        sku="SKU-42",
        category="apparel",
        paid=Money(amount_minor=paid_minor, currency="EUR"),
        delivered_at=delivered if was_delivered else None,
        expected_delivery_at=None if was_delivered else delivered,
        requested_at=delivered + requested_after,
        missing_part=missing_part,
        customer=Customer(customer_id="cust-7", time_zone=time_zone),
    )


async def eventually(
    probe: Callable[[], Awaitable[T]], accept: Callable[[T], bool], *, within_s: float = 15.0
) -> T:
    """Poll `probe` until `accept` holds. Waits for asynchronous effects (an activity's
    write, visibility indexing) in real time; it never stands in for a business timer."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + within_s
    while True:
        value = await probe()
        if accept(value) or loop.time() > give_up:
            return value
        await asyncio.sleep(0.05)
