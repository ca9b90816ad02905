"""Personal data sealed in Temporal: the payload codec, its key ring and per-case data keys,
the codec server, and a case's raw history as Temporal stores it (real dev server, real
PostgreSQL)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.converter import WorkflowSerializationContext
from temporalio.testing import WorkflowEnvironment

from domain.case import Reason
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
from infra.data_converter import sealed_data_converter
from infra.data_keys import PostgresDataKeys, scope_of
from infra.devstack import temporal_cli
from infra.gateway import CaseGateway
from infra.policy_file import load_policy_file
from infra.settings import DEFAULT_POLICY_FILE
from tests.conftest import a_request
from tests.helpers import api_client, as_role, open_case, state_when
from workflows.return_case import ReturnCase

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
    with pytest.raises(UnknownKeyError, match="'k1'.*AFTERSALES_CODEC_KEYS has: k9"):
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
