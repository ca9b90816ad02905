"""Every Temporal client of the project converts payloads with pydantic."""

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from infra.settings import Settings


class TemporalUnreachableError(ConnectionError):
    pass


async def connect(settings: Settings) -> Client:
    try:
        return await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            data_converter=pydantic_data_converter,
        )
    except RuntimeError as error:
        raise TemporalUnreachableError(
            f"cannot reach Temporal at TEMPORAL_ADDRESS={settings.temporal_address} "
            f"(is `make run` running?): {error}"
        ) from error
