"""An OTLP/HTTP trace receiver in the benchmark's own process: the traced API and worker
(infra/tracing.py) export their spans to it, and bench/breakdown.py reads them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.processes import free_port


@dataclass(frozen=True)
class Span:
    name: str
    trace_id: bytes
    span_id: bytes
    parent_id: bytes
    start_ns: int
    end_ns: int

    @property
    def ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


class SpanSink:
    def __init__(self) -> None:
        self.spans: list[Span] = []

    async def receive(self, request: web.Request) -> web.Response:
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.read())
        self.spans.extend(
            Span(
                s.name,
                s.trace_id,
                s.span_id,
                s.parent_span_id,
                s.start_time_unix_nano,
                s.end_time_unix_nano,
            )
            for resource in export.resource_spans
            for scope in resource.scope_spans
            for s in scope.spans
        )
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )

    async def settled(self, *, quiet_s: float = 1.5) -> None:
        """Until no span has arrived for `quiet_s` (the exporters' batches are flushed)."""
        seen = -1
        while seen != len(self.spans):
            seen = len(self.spans)
            await asyncio.sleep(quiet_s)


@asynccontextmanager
async def span_sink() -> AsyncIterator[tuple[SpanSink, str]]:
    """The sink and the endpoint to give OTEL_EXPORTER_OTLP_ENDPOINT."""
    sink = SpanSink()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/traces", sink.receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield sink, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
