"""Every Temporal client of the project converts payloads with pydantic."""

from collections.abc import Sequence

from temporalio.client import Client, Interceptor
from temporalio.contrib.pydantic import pydantic_data_converter

from infra.settings import Settings


class TemporalUnreachableError(ConnectionError):
    pass


async def connect(settings: Settings, interceptors: Sequence[Interceptor] = ()) -> Client:
    """`interceptors`: an edge that sends decisions passes its GrantingInterceptor."""
    try:
        return await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            data_converter=pydantic_data_converter,
            interceptors=interceptors,
        )
    except RuntimeError as error:
        raise TemporalUnreachableError(
            f"cannot reach Temporal at TEMPORAL_ADDRESS={settings.temporal_address} "
            f"(is `make run` running?): {error}"
        ) from error
