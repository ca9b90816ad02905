"""Every Temporal client of the project converts payloads with pydantic and seals them
with the codec (infra/security/data_converter.py)."""

from collections.abc import Sequence

import asyncpg
from temporalio.client import Client, Interceptor
from temporalio.converter import DataConverter
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

from infra.security import data_converter
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
    return await _connect(
        settings, data_converter.data_converter_for(settings, pool), interceptors, runtime
    )


async def connect_for_operations(settings: Settings) -> Client:
    """Operator calls only (search attributes, the Schedule): no payload crosses this
    client, so it needs no codec (nor its keys)."""
    return await _connect(settings, DataConverter.default, (), None)


async def _connect(
    settings: Settings,
    converter: DataConverter,
    interceptors: Sequence[Interceptor],
    runtime: Runtime | None,
) -> Client:
    try:
        return await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            tls=tls_config(settings),
            api_key=settings.temporal_api_key.get_secret_value()
            if settings.temporal_api_key
            else None,
            data_converter=converter,
            interceptors=interceptors,
            runtime=runtime,
        )
    except RuntimeError as error:
        raise TemporalUnreachableError(
            f"cannot reach Temporal at TEMPORAL_ADDRESS={settings.temporal_address} "
            f"(is `make run` running?): {error}"
        ) from error


def tls_config(settings: Settings) -> TLSConfig | bool:
    """Plain gRPC for the dev server; TLS once a client certificate, a server CA or an API
    key is configured (Temporal Cloud takes an API key only over TLS)."""
    cert, key = settings.temporal_tls_client_cert_path, settings.temporal_tls_client_key_path
    ca = settings.temporal_tls_server_ca_cert_path
    if cert is None and key is None and ca is None:
        return settings.temporal_api_key is not None
    return TLSConfig(
        server_root_ca_cert=ca.read_bytes() if ca else None,
        client_cert=cert.read_bytes() if cert else None,
        client_private_key=key.read_bytes() if key else None,
    )
