"""Personal data sealed in Temporal: the payload codec, its key ring and per-case data keys,
the codec server, and a case's raw history as Temporal stores it (real dev server, real
PostgreSQL)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import asyncpg
import httpx
import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.client import Client
from temporalio.converter import WorkflowSerializationContext
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities.policy_file import load_policy_file
from api.app import create_app
from api.codec import RunCodec
from domain.case import Customer, Grade, Reason, Role, ScanEvent
from domain.policy_settings import PolicySettings
from domain.state import CaseState, CaseStatus
from infra.devstack import temporal_cli
from infra.gateway import CaseGateway
from infra.security.codec import (
    ENCRYPTED_ENCODING,
    KEY_ID_METADATA,
    SCOPE_METADATA,
    ErasedDataError,
    KeyRing,
    SealingCodec,
    TamperedPayloadError,
    UnknownKeyError,
)
from infra.security.data_converter import ensure_local_key_file, key_ring, sealed_data_converter
from infra.security.data_keys import PostgresDataKeys, rewrap, scope_of
from infra.settings import DEFAULT_POLICY_FILE, ConfigurationError, load_settings
from tests.conftest import a_request
from tests.helpers import api_client, as_role, open_case, scan, state_when
from tests.identities import IDENTITIES
from workflows.case_run import CaseRun
from workflows.return_case import ReturnCase

UI_ORIGIN = "http://localhost:8233"


def plain(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(text).encode())


def in_case(codec: SealingCodec, workflow_id: str) -> SealingCodec:
    return codec.with_context(
        WorkflowSerializationContext(namespace="default", workflow_id=workflow_id)
    )


def a_case_id() -> str:
    return f"return-SEAL-{uuid.uuid4().hex[:10]}-1-r1"


@pytest.fixture
def k1() -> str:
    return KeyRing.new_key_spec("k1")


@pytest.fixture
def ring(k1: str) -> KeyRing:
    return KeyRing.parse(k1)


@pytest.fixture
def codec(ring: KeyRing, pool: asyncpg.Pool) -> SealingCodec:
    return SealingCodec(ring, PostgresDataKeys(pool, ring))


# --- the codec on its own ---------------------------------------------------------------


async def test_a_payload_without_a_workflow_is_sealed_with_the_newest_master_key(
    codec: SealingCodec,
) -> None:
    [sealed] = await codec.encode([plain("cust-4711")])
    assert sealed.metadata["encoding"] == ENCRYPTED_ENCODING
    assert sealed.metadata[KEY_ID_METADATA] == b"k1"
    assert b"cust-4711" not in sealed.SerializeToString()
    assert await codec.decode([sealed]) == [plain("cust-4711")]


async def test_a_case_and_its_children_share_the_cases_data_key(
    codec: SealingCodec, pool: asyncpg.Pool
) -> None:
    case_id = a_case_id()
    [sealed] = await in_case(codec, f"survey-{case_id}").encode([plain("Europe/Berlin")])
    assert scope_of(f"claim-{case_id}") == scope_of(f"survey-{case_id}") == case_id
    assert sealed.metadata[SCOPE_METADATA] == case_id.encode()
    assert KEY_ID_METADATA not in sealed.metadata
    # Decoding needs no context (the UI's requests carry none).
    assert await codec.decode([sealed]) == [plain("Europe/Berlin")]
    row = await pool.fetchrow("SELECT * FROM data_keys WHERE scope = $1", case_id)
    assert row is not None
    assert (row["master_key_id"], row["destroyed_at"]) == ("k1", None)


async def test_a_key_stored_with_a_cases_first_write_is_the_one_that_seals(
    codec: SealingCodec, ring: KeyRing, pool: asyncpg.Pool
) -> None:
    """The API stores a case's key with its request (infra/gateway.py): what this process
    then seals with, from its cache, is what any other process unwraps from the row."""
    case_id = a_case_id()
    key = codec.new_case_key(case_id)
    await pool.execute(
        "INSERT INTO data_keys (scope, master_key_id, wrapped_key) VALUES ($1, $2, $3)",
        key.scope,
        key.master_key_id,
        key.wrapped,
    )
    codec.data_key_stored(key)
    [sealed] = await in_case(codec, case_id).encode([plain("cust-4711")])
    elsewhere = SealingCodec(ring, PostgresDataKeys(pool, ring))
    assert await elsewhere.decode([sealed]) == [plain("cust-4711")]


async def test_a_changed_payload_is_refused(codec: SealingCodec) -> None:
    [sealed] = await codec.encode([plain("refund 90.00")])
    tampered = Payload()
    tampered.CopyFrom(sealed)
    tampered.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    with pytest.raises(TamperedPayloadError):
        await codec.decode([tampered])


async def test_a_payload_moved_to_another_cases_scope_is_refused(codec: SealingCodec) -> None:
    [sealed] = await in_case(codec, a_case_id()).encode([plain("photo")])
    other = a_case_id()
    await in_case(codec, other).encode([plain("creates the other case's key")])
    moved = Payload()
    moved.CopyFrom(sealed)
    moved.metadata[SCOPE_METADATA] = other.encode()
    with pytest.raises(TamperedPayloadError):
        await codec.decode([moved])


async def test_a_key_id_not_in_the_ring_is_refused_by_name(
    codec: SealingCodec, pool: asyncpg.Pool
) -> None:
    [sealed] = await codec.encode([plain("x")])
    stranger = KeyRing.parse(KeyRing.new_key_spec("k9"))
    with pytest.raises(UnknownKeyError, match=r"'k1'.*AFTERSALES_CODEC_KEYS has: k9"):
        await SealingCodec(stranger, PostgresDataKeys(pool, stranger)).decode([sealed])


async def test_plaintext_payloads_pass_through(codec: SealingCodec) -> None:
    # Histories recorded before the codec (tests/histories) keep replaying.
    assert await codec.decode([plain("recorded before")]) == [plain("recorded before")]


async def test_after_rotation_new_payloads_use_the_new_key_and_old_ones_still_open(
    k1: str, codec: SealingCodec, pool: asyncpg.Pool
) -> None:
    case_id = a_case_id()
    [old_master] = await codec.encode([plain("old")])
    [old_case] = await in_case(codec, case_id).encode([plain("old case")])
    rotated_ring = KeyRing.parse(f"{KeyRing.new_key_spec('k2')},{k1}")
    rotated = SealingCodec(rotated_ring, PostgresDataKeys(pool, rotated_ring))
    [new_master] = await rotated.encode([plain("new")])
    new_case_id = a_case_id()
    await in_case(rotated, new_case_id).encode([plain("new case")])
    assert new_master.metadata[KEY_ID_METADATA] == b"k2"
    assert await rotated.decode([old_master, old_case]) == [plain("old"), plain("old case")]
    wrapped_with = "SELECT master_key_id FROM data_keys WHERE scope = $1"
    assert await pool.fetchval(wrapped_with, case_id) == "k1"
    assert await pool.fetchval(wrapped_with, new_case_id) == "k2"


async def test_rewrapping_lets_an_old_master_key_leave_the_ring(pool: asyncpg.Pool) -> None:
    """Before: a case's data key stayed wrapped with the master key of its day, so that
    key could never be retired while the case was kept."""
    tag = uuid.uuid4().hex[:8]
    old, new = KeyRing.new_key_spec(f"old-{tag}"), KeyRing.new_key_spec(f"new-{tag}")
    old_ring, rotated, new_only = (KeyRing.parse(s) for s in (old, f"{new},{old}", new))
    case_id = a_case_id()
    before = SealingCodec(old_ring, PostgresDataKeys(pool, old_ring))
    [sealed] = await in_case(before, case_id).encode([plain("kept for years")])
    report = await rewrap(pool, rotated)
    again = await rewrap(pool, rotated)
    wrapped_with = "SELECT master_key_id FROM data_keys WHERE scope = $1"
    assert report.rewrapped == 1  # other tests' keys are wrapped with masters not in it
    assert again.rewrapped == 0
    assert report.unknown_master == again.unknown_master
    assert await pool.fetchval(wrapped_with, case_id) == f"new-{tag}"
    after = SealingCodec(new_only, PostgresDataKeys(pool, new_only))
    assert await after.decode([sealed]) == [plain("kept for years")]


async def test_an_erased_case_cannot_be_read_and_the_error_names_it(
    codec: SealingCodec, ring: KeyRing, pool: asyncpg.Pool
) -> None:  # GDPR art. 17
    case_id = a_case_id()
    [sealed] = await in_case(codec, case_id).encode([plain("cust-erase-me")])
    await erase(pool, case_id)
    fresh = SealingCodec(ring, PostgresDataKeys(pool, ring))
    with pytest.raises(ErasedDataError, match=f"{case_id} were erased"):
        await fresh.decode([sealed])
    # Nothing new is sealed for an erased case either.
    with pytest.raises(ErasedDataError):
        await in_case(fresh, case_id).encode([plain("again")])


async def erase(pool: asyncpg.Pool, *scopes: str) -> None:
    await pool.execute(
        "UPDATE data_keys SET wrapped_key = NULL, destroyed_at = now() WHERE scope = ANY($1)",
        list(scopes),
    )


async def test_a_failures_message_is_sealed_too(ring: KeyRing, pool: asyncpg.Pool) -> None:
    # A refusal may quote what it refused (pydantic's errors quote the input value).
    converter = sealed_data_converter(ring, pool)
    failure = Failure()
    await converter.encode_failure(
        ApplicationError("time_zone: 'cust-4711 Europe/Berlin'"), failure
    )
    assert b"cust-4711" not in failure.SerializeToString()
    decoded = await converter.decode_failure(failure)  # decodes in place
    assert str(decoded) == "time_zone: 'cust-4711 Europe/Berlin'"


class FlakyPool:
    """The real pool, until PostgreSQL is said to be down: then as a refused connection."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool, self.down = pool, False

    async def fetchrow(self, query: str, *args: object) -> asyncpg.Record | None:
        if self.down:
            raise ConnectionRefusedError("PostgreSQL is down")
        return await self.pool.fetchrow(query, *args)


async def test_while_postgresql_is_down_cached_keys_still_open_payloads(
    codec: SealingCodec, ring: KeyRing, pool: asyncpg.Pool
) -> None:  # durability: a scan still reaches its case during an outage
    case_id, never_seen = a_case_id(), a_case_id()
    [sealed] = await in_case(codec, case_id).encode([plain("tracking JD0001")])
    [unseen] = await in_case(codec, never_seen).encode([plain("other")])
    flaky = FlakyPool(pool)
    # Every cached key is due for a check at once (TTL 0).
    keys = PostgresDataKeys(cast(asyncpg.Pool, flaky), ring, cache_ttl=timedelta(0))
    reader = SealingCodec(ring, keys)
    assert await reader.decode([sealed]) == [plain("tracking JD0001")]
    flaky.down = True
    assert await reader.decode([sealed]) == [plain("tracking JD0001")]
    with pytest.raises(ConnectionRefusedError):
        await reader.decode([unseen])  # no key to fall back on: the outage shows
    flaky.down = False
    await erase(pool, case_id)
    with pytest.raises(ErasedDataError):
        await reader.decode([sealed])  # checked again once PostgreSQL answers


async def test_a_scope_with_no_key_in_this_database_says_so(
    codec: SealingCodec, ring: KeyRing, pool: asyncpg.Pool
) -> None:
    [sealed] = await in_case(codec, a_case_id()).encode([plain("x")])
    await pool.execute(
        "DELETE FROM data_keys WHERE scope = $1", sealed.metadata[SCOPE_METADATA].decode()
    )
    with pytest.raises(UnknownKeyError, match="DATABASE_URL names another database"):
        await SealingCodec(ring, PostgresDataKeys(pool, ring)).decode([sealed])


def test_a_key_ring_names_what_is_wrong_with_its_configuration() -> None:
    with pytest.raises(ValueError, match="must be 32 bytes"):
        KeyRing.parse("k1:" + base64.b64encode(b"short").decode())
    with pytest.raises(ValueError, match="not id:base64key"):
        KeyRing.parse("just-a-key")
    with pytest.raises(ValueError, match="appears twice"):
        KeyRing.parse(f"{KeyRing.new_key_spec('a')},{KeyRing.new_key_spec('a')}")


# --- a case as Temporal stores it ---------------------------------------------------------


def raw_history(env: WorkflowEnvironment, workflow_id: str, run_id: str) -> dict[str, Any]:
    """The history as the server holds it, read with the Temporal CLI (no codec)."""
    shown = subprocess.run(
        [temporal_cli(), "workflow", "show",
         "--address", env.client.service_client.config.target_host,
         "--namespace", env.client.namespace, "--workflow-id", workflow_id, "--run-id", run_id,
         "--output", "json"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    history: dict[str, Any] = json.loads(shown.stdout)
    return history


def every_text(value: Any) -> Iterator[str]:
    """Every string of a JSON document, and every one that is base64, decoded as well."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from every_text(item)
    elif isinstance(value, list):
        for item in value:
            yield from every_text(item)
    elif isinstance(value, str):
        yield value
        with contextlib.suppress(binascii.Error, ValueError):
            yield base64.b64decode(value, validate=True).decode("utf-8", "replace")


def all_runs(env: WorkflowEnvironment, workflow_id: str, first_run: str) -> list[dict[str, Any]]:
    """The run and every run it continued as."""
    runs = [raw_history(env, workflow_id, first_run)]
    while True:
        last = runs[-1]["events"][-1]
        continued = last.get("workflowExecutionContinuedAsNewEventAttributes")
        if not continued:
            return runs
        runs.append(raw_history(env, workflow_id, continued["newExecutionRunId"]))


def sealed_markers() -> dict[str, str]:
    tag = uuid.uuid4().hex[:10]
    return {
        "customer_id": f"cust-SEALED-{tag}",
        "time_zone": "America/Argentina/Ushuaia",
        "photo": f"https://photos.example/SEALED-{tag}.jpg",
        "note": f"note-SEALED-{tag}: the seam split on first wash",
        "complaint": f"complaint-SEALED-{tag}: nobody answers my mails",
        "tracking_number": f"TRK-SEALED-{tag}",
        "reason": f"reason-SEALED-{tag}: seam defect visible on the photos",
    }


async def test_no_personal_data_reaches_temporal_in_any_run_or_child(
    dev_env: WorkflowEnvironment, running_worker: Any, pool: asyncpg.Pool, task_queue: str
) -> None:  # R25 survey child, continue-as-new, search attributes and summaries included
    env, marker = dev_env, sealed_markers()
    now = datetime.now(UTC)
    request = a_request(
        reason=Reason.QUALITY_DEFECT, delivered_at=now - timedelta(days=1),
        requested_after=timedelta(days=1), order_id=f"O-SEAL-{uuid.uuid4().hex[:8]}",
    ).model_copy(update={"customer": Customer(customer_id=marker["customer_id"],
                                              time_zone=marker["time_zone"])})  # fmt: skip
    case_id = request.case_id
    gateway = CaseGateway(env.client, pool, task_queue, load_policy_file(DEFAULT_POLICY_FILE))
    async with running_worker(env.client), api_client(gateway) as api:
        handle = await open_case(
            env, task_queue, request,
            policy=PolicySettings(dispute_window=timedelta(seconds=2)),
            history_events_before_continue=10,
        )  # fmt: skip
        await state_when(handle, lambda s: s.status is CaseStatus.AWAITING_EVIDENCE)

        async def post(path: str, body: dict[str, Any], token: str) -> None:
            answer = await api.post(path, json=body, headers=as_role(token))
            assert answer.status_code < 300, answer.text

        await post(f"/cases/{case_id}/evidence", {"event_id": "ev-1", "photos": [marker["photo"]],
                                                  "note": marker["note"]}, "service")  # fmt: skip
        await state_when(handle, lambda s: s.status is CaseStatus.UNDER_REVIEW)
        decision = {"action_id": "d-1", "approve": True, "reason": marker["reason"]}
        await post(f"/cases/{case_id}/decision", decision, "agent")
        await post(f"/cases/{case_id}/complaint",
                   {"event_id": "c-1", "summary": marker["complaint"]}, "service")  # fmt: skip
        await post(f"/cases/{case_id}/shipped-back", {"event_id": "s-1", "carrier": "DHL",
                   "tracking_number": marker["tracking_number"], "shipped_at": now.isoformat()},
                   "service")  # fmt: skip
        for event, grade in (("parcel_received", None), ("inspected", "resellable")):
            scan = {"barcode": case_id, "scan_id": f"{case_id}-{event}", "event": event,
                    "station": "DOCK-1", "grade": grade, "scanned_at": now.isoformat()}  # fmt: skip
            await post("/scans", {"scans": [scan]}, "warehouse")
        closed: CaseState = await asyncio.wait_for(handle.result(), timeout=120)
        assert closed.survey_id is not None
        survey = env.client.get_workflow_handle(closed.survey_id)
        survey_run = (await survey.describe()).run_id
        assert survey_run is not None
    # What went in is there for whoever holds the keys ...
    assert closed.request.customer.customer_id == marker["customer_id"]
    assert closed.status is CaseStatus.REFUNDED
    case_runs = all_runs(env, case_id, handle.result_run_id or "")
    assert len(case_runs) >= 2, "the case never continued as new"
    histories = [*case_runs, raw_history(env, closed.survey_id, survey_run)]
    texts = "\n".join(text for history in histories for text in every_text(history))
    # ... and none of it in what Temporal holds: payloads, search attributes, summaries.
    assert case_id in texts  # the reading itself works
    assert closed.survey_id in texts
    leaked = {name: value for name, value in marker.items() if value in texts}
    assert leaked == {}


async def client_with(env: WorkflowEnvironment, ring: KeyRing, pool: asyncpg.Pool) -> Client:
    """Another process's client of the same server: its own codec, key ring and key cache."""
    return await Client.connect(
        env.client.service_client.config.target_host,
        namespace=env.client.namespace,
        data_converter=sealed_data_converter(ring, pool),
    )


async def test_cases_started_under_key_1_finish_after_key_2_becomes_current(
    dev_env: WorkflowEnvironment,
    running_worker: Any,
    pool: asyncpg.Pool,
    task_queue: str,
    k1: str,
) -> None:
    now = datetime.now(UTC)
    before, after = (
        a_request(delivered_at=now - timedelta(days=1), requested_after=timedelta(days=1))
        for _ in range(2)
    )
    client = await client_with(dev_env, KeyRing.parse(k1), pool)
    async with running_worker(client):
        handle = await client.start_workflow(
            ReturnCase.run, CaseRun(request=before), id=before.case_id, task_queue=task_queue
        )
        await state_when(handle, lambda s: s.status is CaseStatus.AWAITING_SHIP_BACK)
    # Key 2 becomes current: a new worker and client, key 1 kept for what it sealed.
    rotated = KeyRing.parse(f"{KeyRing.new_key_spec('k2')},{k1}")
    client = await client_with(dev_env, rotated, pool)
    async with running_worker(client):
        old = client.get_workflow_handle_for(ReturnCase.run, before.case_id)
        await old.signal(ReturnCase.warehouse_scan, scan(ScanEvent.PARCEL_RECEIVED))
        await old.signal(
            ReturnCase.warehouse_scan, scan(ScanEvent.INSPECTED, grade=Grade.RESELLABLE)
        )
        finished = await asyncio.wait_for(old.result(), timeout=60)
        new = await client.start_workflow(
            ReturnCase.run, CaseRun(request=after), id=after.case_id, task_queue=task_queue
        )
        await state_when(new, lambda s: s.status is CaseStatus.AWAITING_SHIP_BACK)
    assert finished.status is CaseStatus.REFUNDED
    wrapped_with = "SELECT master_key_id FROM data_keys WHERE scope = $1"
    assert await pool.fetchval(wrapped_with, before.case_id) == "k1"
    assert await pool.fetchval(wrapped_with, after.case_id) == "k2"


# --- the codec server -------------------------------------------------------------------


@pytest.fixture
async def codec_server(dev_env: WorkflowEnvironment, pool: asyncpg.Pool
                       ) -> AsyncIterator[httpx.AsyncClient]:  # fmt: skip
    gateway = CaseGateway(dev_env.client, pool, "unused", load_policy_file(DEFAULT_POLICY_FILE))
    async with api_client(gateway) as api:
        yield api


def as_json(payload: Payload) -> dict[str, Any]:
    return {
        "metadata": {k: base64.b64encode(v).decode() for k, v in payload.metadata.items()},
        "data": base64.b64encode(payload.data).decode(),
    }


async def test_the_codec_server_decodes_for_staff_only(
    codec_server: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    codec = dev_env.client.data_converter.payload_codec
    assert isinstance(codec, SealingCodec)
    case_id = a_case_id()
    sealed = [*await in_case(codec, case_id).encode([plain("cust-4711")]),
              *await codec.encode([plain("Europe/Berlin")])]  # fmt: skip
    body = {"payloads": [as_json(p) for p in sealed]}
    decoded = await codec_server.post("/codec/decode", json=body, headers=as_role("agent"))
    anonymous = await codec_server.post("/codec/decode", json=body)
    arbiter = await codec_server.post("/codec/decode", json=body, headers=as_role("arbiter"))
    assert decoded.status_code == 200, decoded.text
    assert decoded.json() == {
        "payloads": [as_json(plain("cust-4711")), as_json(plain("Europe/Berlin"))]
    }
    assert decoded.headers["cache-control"] == "no-store"
    assert anonymous.status_code == 401
    assert "cust-4711" not in anonymous.text
    assert arbiter.status_code == 403


async def test_the_codec_server_encodes_what_an_operator_sends(
    codec_server: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    body = {"payloads": [as_json(plain("a note"))]}
    encoded = await codec_server.post("/codec/encode", json=body, headers=as_role("agent"))
    assert encoded.status_code == 200, encoded.text
    [sealed] = encoded.json()["payloads"]
    assert base64.b64decode(sealed["metadata"]["encoding"]) == ENCRYPTED_ENCODING
    opened = await codec_server.post("/codec/decode", json=encoded.json(), headers=as_role("agent"))
    assert opened.json() == body


async def test_the_codec_server_answers_an_erased_cases_payloads_unchanged(
    codec_server: httpx.AsyncClient, dev_env: WorkflowEnvironment, pool: asyncpg.Pool
) -> None:  # GDPR art. 17
    codec = dev_env.client.data_converter.payload_codec
    assert isinstance(codec, SealingCodec)
    case_id = a_case_id()
    [sealed] = await in_case(codec, case_id).encode([plain("cust-erased")])
    await erase(pool, case_id)
    # The process that erased the case drops its key from the cache at once.
    codec.forget([case_id])
    body = {"payloads": [as_json(sealed)]}
    answer = await codec_server.post("/codec/decode", json=body, headers=as_role("agent"))
    assert answer.status_code == 200
    assert answer.json() == body


async def test_the_codec_server_answers_the_ui_origins_preflight(
    codec_server: httpx.AsyncClient,
) -> None:
    asked = {
        "Origin": UI_ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
    }
    preflight = await codec_server.options("/codec/decode", headers=asked)
    stranger = await codec_server.options(
        "/codec/decode", headers=asked | {"Origin": "http://evil.example"}
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == UI_ORIGIN
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    assert stranger.status_code == 400
    assert "access-control-allow-origin" not in stranger.headers


@asynccontextmanager
async def _api_seen_from(
    gateway: CaseGateway, peer: str, host: str, run_codec: RunCodec | None
) -> AsyncIterator[httpx.AsyncClient]:
    """The API as a browser on `peer` reaches it under the name `host`."""
    app = create_app(gateway, IDENTITIES.authenticator, run_codec=run_codec)
    transport = httpx.ASGITransport(app=app, client=(peer, 50_000))
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as client:
        yield client


async def test_make_runs_ui_decodes_through_this_runs_endpoint_alone(
    dev_env: WorkflowEnvironment, pool: asyncpg.Pool
) -> None:
    codec = dev_env.client.data_converter.payload_codec
    assert isinstance(codec, SealingCodec)
    [sealed] = await in_case(codec, a_case_id()).encode([plain("cust-run")])
    body = {"payloads": [as_json(sealed)]}
    run_codec = RunCodec.new()
    endpoint = run_codec.endpoint("")
    gateway = CaseGateway(dev_env.client, pool, "unused", load_policy_file(DEFAULT_POLICY_FILE))
    # What the dev server's UI sends (seen in chromium): JSON, the namespace, no
    # credentials, hence a preflight.
    asked = {"Origin": UI_ORIGIN, "Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "content-type,x-namespace"}  # fmt: skip
    from_ui = {"Origin": UI_ORIGIN, "X-Namespace": "default"}
    async with _api_seen_from(gateway, "127.0.0.1", "localhost:8000", run_codec) as local:
        preflight = await local.options(f"{endpoint}/decode", headers=asked)
        decoded = await local.post(f"{endpoint}/decode?preserveStorageRefs=true", json=body,
                                   headers=from_ui)  # fmt: skip
        guessed = await local.post(
            f"{RunCodec.new().endpoint('')}/decode", json=body, headers=from_ui
        )
        encode = await local.post(f"{endpoint}/encode", json=body, headers=from_ui)
    # A page that rebinds its own name to 127.0.0.1 (DNS rebinding) keeps its Host.
    async with _api_seen_from(gateway, "127.0.0.1", "evil.example:8000", run_codec) as rebound:
        rebinding = await rebound.post(f"{endpoint}/decode", json=body)
    async with _api_seen_from(gateway, "192.0.2.7", "localhost:8000", run_codec) as remote:
        from_afar = await remote.post(f"{endpoint}/decode", json=body)
    # The API `python -m api` runs (compose) has no such endpoint at all.
    async with _api_seen_from(gateway, "127.0.0.1", "localhost:8000", None) as deployed:
        absent = await deployed.post(f"{endpoint}/decode", json=body)
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == UI_ORIGIN
    assert decoded.status_code == 200, decoded.text
    assert decoded.json() == {"payloads": [as_json(plain("cust-run"))]}
    assert decoded.headers["access-control-allow-origin"] == UI_ORIGIN
    assert (guessed.status_code, rebinding.status_code, from_afar.status_code) == (401, 403, 403)
    assert encode.status_code == 404  # decode only: nothing is sealed for the holder
    assert absent.status_code == 404
    for refused in (guessed, rebinding, from_afar, encode, absent):
        assert "cust-run" not in refused.text


async def test_a_ui_with_its_own_login_passes_its_access_token_to_the_codec(
    codec_server: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    # Compose's UI signs in with the identity provider and sends the access token
    # (TEMPORAL_CODEC_PASS_ACCESS_TOKEN) and, from UI 2.4x, the ID token beside it. The
    # provider issues the UI's token for its own client and for this API's audience.
    codec = dev_env.client.data_converter.payload_codec
    assert isinstance(codec, SealingCodec)
    [sealed] = await in_case(codec, a_case_id()).encode([plain("cust-sso")])
    body = {"payloads": [as_json(sealed)]}
    asked = {"Origin": UI_ORIGIN, "Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers":
                 "authorization,authorization-extras,content-type,x-namespace"}  # fmt: skip
    access = IDENTITIES.token("agent-ann", Role.AGENT, audience=["temporal-ui", "aftersales-api"])
    only_the_ui = IDENTITIES.token("agent-ann", Role.AGENT, audience="temporal-ui")
    sent = {"Origin": UI_ORIGIN, "X-Namespace": "default", "Authorization-Extras": "id-token"}
    preflight = await codec_server.options("/codec/decode", headers=asked)
    decoded = await codec_server.post(
        "/codec/decode", json=body, headers=sent | {"Authorization": f"Bearer {access}"}
    )
    not_for_us = await codec_server.post(
        "/codec/decode", json=body, headers=sent | {"Authorization": f"Bearer {only_the_ui}"}
    )
    assert preflight.status_code == 200
    assert decoded.status_code == 200, decoded.text
    assert decoded.json() == {"payloads": [as_json(plain("cust-sso"))]}
    assert not_for_us.status_code == 401
    assert "audience" in not_for_us.text


async def test_a_body_that_is_not_payloads_is_refused_in_the_apis_error_shape(
    codec_server: httpx.AsyncClient,
) -> None:
    answer = await codec_server.post(
        "/codec/decode", json={"payloads": "nope"}, headers=as_role("agent")
    )
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "payloads"


async def test_the_dev_uis_browser_reads_cases_with_a_session_cookie(
    codec_server: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    # The dev server's UI has no login, hence no token to pass: it can only include
    # credentials (a cookie) with its cross-origin codec requests.
    codec = dev_env.client.data_converter.payload_codec
    assert isinstance(codec, SealingCodec)
    [sealed] = await in_case(codec, a_case_id()).encode([plain("cust-cookie")])
    body = {"payloads": [as_json(sealed)]}
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    opened = await codec_server.post(
        "/codec/session", content=f"token={IDENTITIES.token('agent-ann', Role.AGENT)}", headers=form
    )
    cookie = opened.headers["set-cookie"]
    from_ui = {"Origin": UI_ORIGIN}
    decoded = await codec_server.post("/codec/decode", json=body, headers=from_ui)
    codec_server.cookies.clear()
    # Only a valid staff token is kept: no session for the arbiter, nor for a forged
    # token another site's page might post (login CSRF).
    arbiter_session = await codec_server.post(
        "/codec/session",
        content=f"token={IDENTITIES.token('arbiter-abe', Role.ARBITER)}",
        headers=form,
    )
    forged_session = await codec_server.post(
        "/codec/session", content="token=eyJhbGciOiJub25lIn0.e30.", headers=form
    )
    arbiter = await codec_server.post("/codec/decode", json=body, headers=from_ui)
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/;" in cookie or cookie.endswith("Path=/")
    assert decoded.status_code == 200, decoded.text
    assert decoded.json() == {"payloads": [as_json(plain("cust-cookie"))]}
    assert decoded.headers["access-control-allow-origin"] == UI_ORIGIN
    assert decoded.headers["access-control-allow-credentials"] == "true"
    assert (arbiter_session.status_code, forged_session.status_code) == (403, 401)
    assert "set-cookie" not in arbiter_session.headers
    assert "set-cookie" not in forged_session.headers
    assert arbiter.status_code == 401


# --- configuration ----------------------------------------------------------------------


def test_make_run_creates_a_private_key_file_once_and_keeps_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AFTERSALES_CODEC_KEYS")
    monkeypatch.setenv("AFTERSALES_CODEC_KEYS_FILE", str(tmp_path / "codec-keys"))
    settings = load_settings()
    with pytest.raises(ConfigurationError, match="AFTERSALES_CODEC_KEYS: no payload codec keys"):
        key_ring(settings)
    ensure_local_key_file(settings)
    first = (tmp_path / "codec-keys").read_text()
    ensure_local_key_file(settings)  # a later `make run`: the cases need the same key
    assert (tmp_path / "codec-keys").read_text() == first
    assert (tmp_path / "codec-keys").stat().st_mode & 0o077 == 0
    assert key_ring(settings).newest_id == "local-1"


def test_a_bad_key_configuration_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFTERSALES_CODEC_KEYS", "k1:bm90IDMyIGJ5dGVz")
    with pytest.raises(ConfigurationError, match="AFTERSALES_CODEC_KEYS: key 'k1': must be 32"):
        key_ring(load_settings())
