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
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from temporalio.api.common.v1 import Payload
from temporalio.converter import WorkflowSerializationContext
from temporalio.testing import WorkflowEnvironment

from domain.case import Customer, Reason
from domain.policy_settings import PolicySettings
from domain.state import CaseState, CaseStatus
from infra.codec import (
    ENCRYPTED_ENCODING,
    KEY_ID_METADATA,
    SCOPE_METADATA,
    ErasedDataError,
    KeyRing,
    SealingCodec,
    TamperedPayloadError,
    UnknownKeyError,
)
from infra.data_keys import PostgresDataKeys, scope_of
from infra.devstack import temporal_cli
from infra.gateway import CaseGateway
from infra.policy_file import load_policy_file
from infra.settings import DEFAULT_POLICY_FILE
from tests.conftest import a_request
from tests.helpers import api_client, as_role, open_case, state_when

TOKENS = "service=t-service,scanner=t-scanner,agent=t-agent,arbiter=t-arbiter"
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
    async with running_worker(env.client), api_client(gateway, TOKENS) as api:
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
                                                  "note": marker["note"]}, "t-service")  # fmt: skip
        await state_when(handle, lambda s: s.status is CaseStatus.UNDER_REVIEW)
        decision = {"action_id": "d-1", "approve": True, "reason": marker["reason"]}
        await post(f"/cases/{case_id}/decision", decision, "t-agent")
        await post(f"/cases/{case_id}/complaint",
                   {"event_id": "c-1", "summary": marker["complaint"]}, "t-service")  # fmt: skip
        await post(f"/cases/{case_id}/shipped-back", {"event_id": "s-1", "carrier": "DHL",
                   "tracking_number": marker["tracking_number"], "shipped_at": now.isoformat()},
                   "t-service")  # fmt: skip
        for event, grade in (("parcel_received", None), ("inspected", "resellable")):
            scan = {"barcode": case_id, "scan_id": f"{case_id}-{event}", "event": event,
                    "station": "DOCK-1", "grade": grade, "scanned_at": now.isoformat()}  # fmt: skip
            await post("/scans", {"scans": [scan]}, "t-scanner")
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
