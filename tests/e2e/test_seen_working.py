"""Seen working (issue 18, part 5): the API's and the worker's /metrics, /healthz and
/readyz, the business figures read from the read model, the Grafana dashboard's queries
against what is actually exported, one trace from the API through Temporal to the
activities, and log lines as JSON with their request and case."""

from __future__ import annotations

import io
import json
import logging
import re
import socket
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.testing import WorkflowEnvironment

from activities.policy_file import load_policy_file
from api.app import create_app
from api.status import HEALTH_PATH
from infra.business_metrics import BusinessFigures
from infra.database import create_pool
from infra.gateway import CaseGateway
from infra.health import Dependency, readiness
from infra.logs import configure_logging, request_id
from infra.settings import DEFAULT_POLICY_FILE
from infra.worker_status import SdkMetrics, serve_status, status_server, worker_status_app
from tests.conftest import WorkerFactory, eventually
from tests.helpers import api_client, as_role
from tests.identities import IDENTITIES, TRUSTING_EDGE
from tests.integration.test_api import request_json
from tests.processes import ROOT

DASHBOARD = ROOT / "docs" / "grafana" / "aftersales.json"
# A metric name in a PromQL expression: ours, and the SDK's (prefixed `temporal_`).
METRIC_NAME = re.compile(r"\b((?:aftersales|temporal)_[a-z0-9_]+)")
# Suffixes Prometheus adds to a histogram's or counter's family name.
_SERIES_SUFFIX = re.compile(r"_(bucket|sum|count|total|created)$")


def gateway_on(client: Client, pool: asyncpg.Pool, task_queue: str) -> CaseGateway:
    return CaseGateway(client, pool, task_queue, load_policy_file(DEFAULT_POLICY_FILE))


def exported_names(exposition: str) -> set[str]:
    """Every family the exposition declares (a figure with no sample yet, such as money
    moved before the first refund, is declared all the same) and every series."""
    names = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            name = line.split()[2]
        elif line and not line.startswith("#"):
            name = re.split(r"[{ ]", line, maxsplit=1)[0]
        else:
            continue
        names |= {name, _SERIES_SUFFIX.sub("", name)}
    return names


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


@pytest.fixture
async def sdk_metrics_client(dev_env: WorkflowEnvironment) -> tuple[SdkMetrics, Client]:
    """A client (and so a worker) on a runtime that exports the SDK's own metrics."""
    sdk = SdkMetrics()
    config = dev_env.client.config()
    client = await Client.connect(
        dev_env.client.service_client.config.target_host,
        namespace=dev_env.client.namespace,
        data_converter=config["data_converter"],
        interceptors=[TRUSTING_EDGE],
        runtime=sdk.runtime,
    )
    return sdk, client


async def open_a_case(api: httpx.AsyncClient) -> str:
    opened = await api.post("/cases", json=request_json(), headers=as_role("service"))
    assert opened.status_code == 201, opened.text
    case_id: str = opened.json()["case_id"]
    return case_id


async def test_the_api_is_alive_and_ready(api: httpx.AsyncClient) -> None:
    alive = await api.get("/healthz")  # no credential: probes carry none
    ready = await api.get("/readyz")
    assert (alive.status_code, alive.json()) == (200, {"alive": True})
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"ready": True, "checks": {d.value: "ok" for d in Dependency}}


async def test_not_ready_while_migrations_are_pending(
    dev_env: WorkflowEnvironment, database_url: str, task_queue: str
) -> None:
    name = f"aftersales_empty_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    empty = await create_pool(urlunsplit(urlsplit(database_url)._replace(path=f"/{name}")))
    try:
        said = await readiness(empty, dev_env.client)
        async with api_client(gateway_on(dev_env.client, empty, task_queue)) as api:
            answer = await api.get("/readyz")
    finally:
        await empty.close()
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()
    assert said.ready is False
    assert said.checks[Dependency.POSTGRESQL] == "ok"
    assert said.checks[Dependency.MIGRATIONS].startswith("pending: ")
    assert answer.status_code == 503
    assert answer.json()["checks"]["migrations"].startswith("pending: ")


async def test_api_metrics_count_requests_by_route_template_and_the_business(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:  # R21, R24
    case_id = await open_a_case(api)
    # The figures are the read model's: once the ledger step wrote the case's row.
    await eventually(
        lambda: pool.fetchval("SELECT count(*) FROM cases WHERE case_id = $1", case_id),
        lambda rows: rows == 1,
    )
    read = await api.get(f"/cases/{case_id}", headers=as_role("service"))
    assert read.status_code == 200
    # Answered before any route is reached: labelled by the route it would have reached.
    unproven = await api.get(f"/cases/{case_id}")
    assert unproven.status_code == 401
    nowhere = await api.get("/nowhere", headers=as_role("service"))
    assert nowhere.status_code == 404
    assert (await api.get(HEALTH_PATH)).status_code == 200
    scraped = await api.get("/metrics")
    assert scraped.status_code == 200
    text = scraped.text
    assert re.search(
        r'aftersales_http_requests_total\{method="POST",route="/cases",status="201"\} 1\.0', text
    )
    assert 'route="/cases/{case_id}",status="200"' in text
    assert 'route="/cases/{case_id}",status="401"' in text
    assert 'route="unmatched",status="404"' in text
    assert f'route="{HEALTH_PATH}",status="200"' in text
    assert case_id not in text  # the template, never the path a caller sent
    assert "aftersales_http_request_duration_seconds_bucket" in text
    assert "aftersales_refused_input_budget_exceeded_total 0.0" in text
    opened = re.search(r'aftersales_cases_opened_total\{kind="return"\} ([\d.]+)', text)
    assert opened is not None
    assert float(opened.group(1)) >= 1
    assert re.search(r'aftersales_cases_open\{status="[a-z_]+"\} [\d.]+', text)
    assert "aftersales_batch_flags_total" in text


async def test_the_worker_status_port_and_every_dashboard_query(
    dev_env: WorkflowEnvironment,
    pool: asyncpg.Pool,
    task_queue: str,
    running_worker: WorkerFactory,
    sdk_metrics_client: tuple[SdkMetrics, Client],
) -> None:
    sdk, client = sdk_metrics_client
    status = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=worker_status_app(sdk, pool, client)),
        base_url="http://worker",
    )
    gateway = gateway_on(dev_env.client, pool, task_queue)
    async with running_worker(client), api_client(gateway) as api, status:
        case_id = await open_a_case(api)
        await eventually(
            lambda: status.get("/metrics"),
            lambda answer: "temporal_workflow_task_execution_latency" in answer.text,
        )
        worker_text = (await status.get("/metrics")).text
        api_text = (await api.get("/metrics")).text
        alive, ready = await status.get("/healthz"), await status.get("/readyz")
    assert (alive.status_code, ready.status_code) == (200, 200)
    assert ready.json()["ready"] is True
    # The SDK's own: task latencies, slots, the sticky cache.
    sdk_own = (
        "temporal_workflow_task_execution_latency",
        "temporal_worker_task_slots_available",
        "temporal_sticky_cache_size",
        "temporal_local_activity_execution_latency",
    )
    for name in sdk_own:
        assert name in worker_text, name
    assert case_id not in worker_text
    exported = exported_names(worker_text) | exported_names(api_text)
    queries = dashboard_queries()
    assert len(queries) >= 8
    named = {name for query in queries for name in METRIC_NAME.findall(query)}
    assert {_SERIES_SUFFIX.sub("", n) for n in named} - exported == set()


@pytest.fixture
def spans() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


async def test_one_opening_is_one_trace_from_the_api_to_the_activities(
    dev_env: WorkflowEnvironment,
    pool: asyncpg.Pool,
    task_queue: str,
    running_worker: WorkerFactory,
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    config = dev_env.client.config()
    config["interceptors"] = [*config["interceptors"], TracingInterceptor(provider.get_tracer("t"))]
    traced = Client(**config)
    app = create_app(
        gateway_on(traced, pool, task_queue), IDENTITIES.authenticator, tracer_provider=provider
    )
    transport = httpx.ASGITransport(app=app)
    async with (
        running_worker(traced),
        httpx.AsyncClient(transport=transport, base_url="http://localhost") as api,
    ):
        await open_a_case(api)

        async def names() -> list[str]:
            return [span.name for span in exporter.get_finished_spans()]

        await eventually(names, lambda seen: any(n.startswith("RunActivity:") for n in seen))
    finished = exporter.get_finished_spans()
    by_name = {span.name: span for span in finished}
    opening = next(s for s in finished if s.name.startswith("POST /cases"))
    start = next(s for s in finished if s.name.startswith("StartWorkflow:"))
    run = next(s for s in finished if s.name.startswith("RunWorkflow:"))
    activity = next(s for s in finished if s.name.startswith("RunActivity:"))
    assert opening.context is not None
    trace = opening.context.trace_id
    for span in (start, run, activity):
        assert span.context is not None
        assert span.context.trace_id == trace, by_name.keys()


async def test_log_lines_are_json_with_the_request_and_case(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging()
    token = request_id.set("req-42")
    try:
        logging.getLogger("aftersales.test").info("refund issued")
    finally:
        request_id.reset(token)
        logging.basicConfig(force=True, handlers=[logging.StreamHandler(io.StringIO())])
    (line,) = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert line["message"] == "refund issued"
    assert line["request_id"] == "req-42"
    assert line["level"] == "INFO"
    assert "case_id" in line


async def test_every_answer_carries_its_request_id(api: httpx.AsyncClient) -> None:
    chosen = await api.get("/healthz", headers={"X-Request-ID": "probe-7"})
    made = await api.get("/healthz", headers={"X-Request-ID": "bad id\nwith a newline"})
    assert chosen.headers["x-request-id"] == "probe-7"
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])


async def test_a_status_port_already_taken_costs_the_port_not_the_worker(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with caplog.at_level(logging.WARNING, logger="aftersales.worker_status"):
            await serve_status(status_server(Starlette(), "127.0.0.1", port))
    assert f"127.0.0.1:{port} cannot be bound" in caplog.text


async def test_the_business_figures_outlive_a_database_outage(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    pool = await create_pool(database_url)
    figures = BusinessFigures(pool, max_age_s=0)
    await figures.refresh()
    before = [(m.name, m.samples) for m in figures.collect()]
    await pool.close()  # every read now fails
    await figures.refresh()  # the scrape goes on: the last figures stay
    assert [(m.name, m.samples) for m in figures.collect()] == before
    assert "business figures not read" in caplog.text
