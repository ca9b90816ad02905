"""The worker's status port: /metrics, /healthz, /readyz (docs/operations.md).

/metrics is the Temporal SDK's own (task latencies, slots, sticky cache: its Rust core
exports them in Prometheus' text format through the runtime's telemetry), served on a
loopback port of its own that this app relays, so a worker needs one port for a scraper
and for its probes."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
import httpx
import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from infra.health import readiness

_LOOPBACK = "127.0.0.1"
log = logging.getLogger("aftersales.worker_status")


def _free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind((_LOOPBACK, 0))
        port: int = probe.getsockname()[1]
    return port


class SdkMetrics:
    """A runtime whose SDK metrics are served on a free loopback port."""

    def __init__(self) -> None:
        self.address = f"{_LOOPBACK}:{_free_loopback_port()}"
        self.runtime = Runtime(
            telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=self.address))
        )


class _StatusServer(uvicorn.Server):
    """Leaves the signals to the process it serves in: uvicorn's own handling would
    stop the status port alone on Ctrl-C and raise the signal again afterwards."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def status_server(app: Starlette, host: str, port: int) -> uvicorn.Server:
    return _StatusServer(
        uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    )


async def serve_status(server: uvicorn.Server) -> None:
    """Serve until told to exit. A port already taken (another worker on this machine
    with the same setting) costs the status port, never the worker: it says so and the
    worker polls its task queue all the same."""
    try:
        await server.serve()
    except SystemExit:  # uvicorn's answer to a port it cannot bind
        log.warning(
            "no status port: %s:%d cannot be bound (AFTERSALES_WORKER_STATUS_PORT)",
            server.config.host,
            server.config.port,
        )


def worker_status_app(sdk: SdkMetrics, pool: asyncpg.Pool, client: Client) -> Starlette:
    async def metrics(_: Request) -> Response:
        async with httpx.AsyncClient(timeout=5) as http:
            answer = await http.get(f"http://{sdk.address}/metrics")
        return Response(answer.content, media_type=CONTENT_TYPE_LATEST)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"alive": True})

    async def readyz(_: Request) -> Response:
        ready = await readiness(pool, client)
        return JSONResponse(ready.model_dump(mode="json"), status_code=200 if ready.ready else 503)

    return Starlette(
        routes=[
            Route("/metrics", metrics),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
        ]
    )
