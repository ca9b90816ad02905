"""Every Temporal client of the project converts payloads with pydantic and seals them
with the codec (infra/data_converter.py)."""

from collections.abc import Sequence

import asyncpg
from temporalio.client import Client, Interceptor
from temporalio.runtime import Runtime

from infra import data_converter
from infra.settings import Settings


class TemporalUnreachableError(ConnectionError):
    pass


async def connect(
    settings: Settings,
    pool: asyncpg.Pool,
    interceptors: Sequence[Interceptor] = (),
    *,
    runtime: Runtime | None = None,
) -> Client:
    """`pool` keeps the per-case data keys of the payload codec; `interceptors`: an edge
    that sends decisions passes its GrantingInterceptor; `runtime`: the worker's, which
    exports the SDK's metrics (infra/worker_status.py)."""
    try:
        return await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            data_converter=data_converter.data_converter_for(settings, pool),
            interceptors=interceptors,
            runtime=runtime,
        )
    except RuntimeError as error:
        raise TemporalUnreachableError(
            f"cannot reach Temporal at TEMPORAL_ADDRESS={settings.temporal_address} "
            f"(is `make run` running?): {error}"
        ) from error
