"""The fast layer: the real workflows on the time-skipping server, the activities stood
in by tests/workflows/standins.py. No PostgreSQL: the overrides below replace the
fixtures of tests/conftest.py that need it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
from temporalio.client import Client
from temporalio.converter import DataConverter

from infra.security.codec import KeyRing
from infra.security.data_converter import data_converter_sealing_with
from tests.workflows.standins import InMemoryDataKeys, StandIns


@pytest.fixture(scope="session")
def data_converter(key_ring: KeyRing) -> DataConverter:
    return data_converter_sealing_with(key_ring, InMemoryDataKeys())


@pytest.fixture
def standins() -> StandIns:
    return StandIns()


@pytest.fixture
def running_worker(
    standins: StandIns, task_queue: str
) -> Callable[[Client], AbstractAsyncContextManager[None]]:
    """`async with running_worker(client):` runs the workflows over the stand-ins."""

    @asynccontextmanager
    async def run(client: Client) -> AsyncIterator[None]:
        async with standins.worker(client, task_queue):
            yield

    return run
