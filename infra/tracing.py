"""OpenTelemetry traces from the API through Temporal to the activities, exported only
when a collector is configured (OTEL_EXPORTER_OTLP_ENDPOINT).

The API's requests are spans (FastAPI instrumentation); the Temporal SDK's interceptor
carries the context in the workflow's headers, so StartWorkflow, the workflow's run and
each activity join the request's trace. Within them, named stages (authentication, a
data key's creation or fetch, the request's and the ledger's statements) are spans of
their own, from the process's global provider. Unconfigured, no provider is made and no
interceptor is added: nothing is recorded, nothing leaves the process."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from temporalio.contrib.opentelemetry import TracingInterceptor

from infra.settings import Settings


def tracer_provider(settings: Settings, service: str) -> TracerProvider | None:
    """The process's provider, exporting over OTLP/HTTP; None when not configured."""
    if not settings.otlp_endpoint:  # unset, or set empty (docker-compose.yml)
        return None
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    # The stages' spans (trace.get_tracer in each module) go through it as well.
    trace.set_tracer_provider(provider)
    return provider


def tracing_interceptors(provider: TracerProvider | None) -> list[TracingInterceptor]:
    """For the Temporal client (a worker built on that client traces its tasks too)."""
    if provider is None:
        return []
    return [TracingInterceptor(provider.get_tracer("aftersales"))]
