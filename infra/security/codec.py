"""Personal data sealed in Temporal: an AES-256-GCM payload codec.

Every payload a client or worker hands to Temporal is encrypted before it leaves the
process. A payload that belongs to a case (the serialization context names its workflow)
is sealed with that case's own data key (infra/security/data_keys.py), so destroying the key makes
every payload of the case unreadable (GDPR erasure); anything else is sealed with the
newest master key of the key ring. Decoding needs no context: the metadata says which key
sealed the payload. Payloads that were never encrypted (histories recorded before the
codec) pass through, so they still replay."""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, Self

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    ActivitySerializationContext,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
    WorkflowSerializationContext,
)

from domain.workflow_ids import parse_workflow_id

ENCRYPTED_ENCODING = b"binary/encrypted"
# Metadata of a sealed payload: the master key's id, or the case whose data key sealed it.
KEY_ID_METADATA = "encryption-key-id"
SCOPE_METADATA = "encryption-scope"
KEY_BYTES = 32  # AES-256
_NONCE_BYTES = 12  # GCM's standard nonce; random per payload


class CodecError(Exception):
    """A sealed payload that cannot be opened."""


class UnknownKeyError(CodecError):
    pass


class ErasedDataError(CodecError):
    pass


class TamperedPayloadError(CodecError):
    pass


class KeyRing:
    """Master keys, newest first: the newest seals, every one still opens.

    Configured as `id:base64key,id:base64key` (AFTERSALES_CODEC_KEYS); rotating means
    putting a new key in front; `starter.py rewrap-keys` then wraps every case's data key
    with it, and an old key may leave once no master-sealed payload it opened is needed."""

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("a key ring needs at least one key")
        self._keys: dict[str, AESGCM] = {}
        # Newest first, as configured: keys for other purposes are derived from these.
        self._secrets: list[tuple[str, bytes]] = []
        for key_id, secret in keys:
            if not key_id or "," in key_id or ":" in key_id:
                raise ValueError(f"key id {key_id!r}: must be non-empty, without ',' or ':'")
            if len(secret) != KEY_BYTES:
                raise ValueError(f"key {key_id!r}: must be {KEY_BYTES} bytes, not {len(secret)}")
            if key_id in self._keys:
                raise ValueError(f"key id {key_id!r} appears twice")
            self._keys[key_id] = AESGCM(secret)
            self._secrets.append((key_id, secret))
        self.newest_id = keys[0][0]

    @classmethod
    def parse(cls, spec: str) -> KeyRing:
        keys = []
        for entry in filter(None, (part.strip() for part in spec.split(","))):
            key_id, sep, encoded = entry.partition(":")
            if not sep:
                raise ValueError(f"{key_id!r} is not id:base64key")
            try:
                keys.append((key_id, base64.b64decode(encoded, validate=True)))
            except ValueError as error:
                raise ValueError(f"key {key_id!r}: not base64 ({error})") from error
        return cls(keys)

    @staticmethod
    def new_key_spec(key_id: str) -> str:
        """One freshly generated key, in the configuration format."""
        return f"{key_id}:{base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()}"

    def key(self, key_id: str) -> AESGCM:
        try:
            return self._keys[key_id]
        except KeyError:
            raise UnknownKeyError(
                f"payload sealed with key {key_id!r}, which is not in the key ring "
                f"(AFTERSALES_CODEC_KEYS has: {', '.join(self._keys)})"
            ) from None

    @property
    def newest(self) -> AESGCM:
        return self._keys[self.newest_id]

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def derived(self, purpose: bytes) -> list[bytes]:
        """One key per master key, newest first, for `purpose` only (HKDF-SHA256, RFC
        5869): a key for another use never opens a payload, and needs no configuration
        of its own."""
        return [
            HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=purpose).derive(
                secret
            )
            for _, secret in self._secrets
        ]


def seal(key: AESGCM, plaintext: bytes, associated: bytes) -> bytes:
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + key.encrypt(nonce, plaintext, associated)


def unseal(key: AESGCM, sealed: bytes, associated: bytes) -> bytes:
    """Raises InvalidTag if the bytes or what they are bound to were changed."""
    return key.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], associated)


@dataclass(frozen=True)
class NewDataKey:
    """A scope's key made but not yet stored: `wrapped` (with the master key
    `master_key_id`) is what the store keeps, `key` what seals."""

    scope: str
    master_key_id: str
    wrapped: bytes
    key: bytes = field(repr=False)


class DataKeys(Protocol):
    """Per-case data keys (infra/security/data_keys.py keeps them in PostgreSQL)."""

    def new_key(self, scope: str) -> NewDataKey:
        """A fresh key for `scope`, for the caller to store with its own write."""
        ...

    def stored(self, new: NewDataKey) -> None:
        """`new` was stored (by whoever asked for it): seal with it from now on."""
        ...

    async def for_sealing(self, scope: str) -> AESGCM:
        """The scope's key, created on first use; ErasedDataError once destroyed."""
        ...

    async def for_opening(self, scope: str) -> AESGCM:
        """The scope's key; ErasedDataError if destroyed, UnknownKeyError if never made."""
        ...

    def forget(self, scopes: Iterable[str]) -> None:
        """Drop these scopes' keys from any cache (their keys were just destroyed)."""
        ...


def scope_of(workflow_id: str) -> str | None:
    """A case's children (the survey, the carrier claim) share its data key: erasing the
    case erases them too. None: no case's data (R24's batch alarm), the master key seals
    it, so it adds no data keys and opens wherever the key ring does. An id of no known
    kind is a scope of its own."""
    parsed = parse_workflow_id(workflow_id)
    return workflow_id if parsed is None else parsed.case_id


class SealingCodec(PayloadCodec, WithSerializationContext):
    """AES-256-GCM over the whole serialized payload (data and metadata alike, so the
    encoding and pydantic's type hints are not in the clear either)."""

    def __init__(self, ring: KeyRing, data_keys: DataKeys, scope: str | None = None) -> None:
        self._ring = ring
        self._data_keys = data_keys
        self._scope = scope

    def with_context(self, context: SerializationContext) -> Self:
        """The workflow the payloads belong to picks the data key. An activity's context
        names the workflow that scheduled it; a standalone activity's has none."""
        workflow_id = (
            context.workflow_id
            if isinstance(context, WorkflowSerializationContext | ActivitySerializationContext)
            else None
        )
        return type(self)(
            self._ring, self._data_keys, scope_of(workflow_id) if workflow_id else None
        )

    @property
    def ring(self) -> KeyRing:
        return self._ring

    def new_case_key(self, case_id: str) -> NewDataKey:
        """A fresh data key for the case `case_id` (its own scope, scope_of), to store with
        the case's first write (infra/gateway.py)."""
        return self._data_keys.new_key(case_id)

    def data_key_stored(self, new: NewDataKey) -> None:
        self._data_keys.stored(new)

    def forget(self, scopes: Iterable[str]) -> None:
        """After erasing cases (destroying their data keys), in the process that did it:
        from now on their payloads no longer open here, not only after the cache's TTL."""
        self._data_keys.forget(scopes)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        if self._scope is None:
            key, metadata = self._ring.newest, {KEY_ID_METADATA: self._ring.newest_id.encode()}
        else:
            key = await self._data_keys.for_sealing(self._scope)
            metadata = {SCOPE_METADATA: self._scope.encode()}
        associated = _associated(metadata)
        return [
            Payload(
                metadata={"encoding": ENCRYPTED_ENCODING, **metadata},
                data=seal(key, payload.SerializeToString(), associated),
            )
            for payload in payloads
        ]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [await self._decode_one(payload) for payload in payloads]

    async def _decode_one(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCRYPTED_ENCODING:
            return payload  # recorded before the codec: plaintext
        metadata = {
            name: payload.metadata[name]
            for name in (KEY_ID_METADATA, SCOPE_METADATA)
            if name in payload.metadata
        }
        if SCOPE_METADATA in metadata:
            key = await self._data_keys.for_opening(metadata[SCOPE_METADATA].decode())
        elif KEY_ID_METADATA in metadata:
            key = self._ring.key(metadata[KEY_ID_METADATA].decode())
        else:
            raise UnknownKeyError("encrypted payload names neither a key id nor a scope")
        try:
            return Payload.FromString(unseal(key, payload.data, _associated(metadata)))
        except InvalidTag:
            raise TamperedPayloadError(
                f"encrypted payload ({_describe(metadata)}) does not authenticate: "
                "changed, or sealed with another key of the same id"
            ) from None


def _associated(metadata: dict[str, bytes]) -> bytes:
    """The key's name is authenticated with the data: a payload moved to another case's
    scope, or relabelled with another key id, fails to open."""
    return b"\x00".join(name.encode() + b"=" + value for name, value in sorted(metadata.items()))


def _describe(metadata: dict[str, bytes]) -> str:
    return ", ".join(f"{name} {value.decode()!r}" for name, value in sorted(metadata.items()))
