"""The one data converter of every Temporal client and worker of the project: the API,
the worker, starter.py, `make run`, the dev stack, the tests, the replayer and the bench.

pydantic converts values to payloads; the sealing codec (infra/security/codec.py) then encrypts
them, so personal data never reaches Temporal in the clear. Failures' messages and stack
traces go into an encrypted payload as well: a refusal may quote the input it refused."""

from __future__ import annotations

import dataclasses

import asyncpg
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes

from infra.security.codec import DataKeys, KeyRing, SealingCodec
from infra.security.data_keys import PostgresDataKeys
from infra.settings import ConfigurationError, Settings

# Unsealed, for one use only: recording the replay fixtures in tests/histories (made-up
# data), which must replay on any machine without its keys.
FIXTURE_RECORDING_DATA_CONVERTER = pydantic_data_converter


def sealed_data_converter(ring: KeyRing, pool: asyncpg.Pool) -> DataConverter:
    """Payloads sealed with per-case data keys kept in `pool`'s `data_keys` table."""
    return data_converter_sealing_with(ring, PostgresDataKeys(pool, ring))


def data_converter_sealing_with(ring: KeyRing, data_keys: DataKeys) -> DataConverter:
    """The same converter over any store of data keys (the fast workflow tests keep
    theirs in memory: tests/workflows/standins.py)."""
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=SealingCodec(ring, data_keys),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def data_converter_for(settings: Settings, pool: asyncpg.Pool) -> DataConverter:
    return sealed_data_converter(key_ring(settings), pool)


def key_ring(settings: Settings) -> KeyRing:
    """AFTERSALES_CODEC_KEYS, else the file AFTERSALES_CODEC_KEYS_FILE names."""
    if settings.codec_keys:
        spec, source = settings.codec_keys, "AFTERSALES_CODEC_KEYS"
    elif settings.codec_keys_file.is_file():
        spec = settings.codec_keys_file.read_text(encoding="utf-8")
        source = f"AFTERSALES_CODEC_KEYS_FILE={settings.codec_keys_file}"
    else:
        raise ConfigurationError(
            "AFTERSALES_CODEC_KEYS: no payload codec keys: set it (id:base64key, newest "
            f"first) or AFTERSALES_CODEC_KEYS_FILE; {settings.codec_keys_file} does not exist "
            "(`make run` creates it)"
        )
    try:
        return KeyRing.parse(spec)
    except ValueError as error:
        raise ConfigurationError(f"{source}: {error}") from error


def ensure_local_key_file(settings: Settings) -> None:
    """`make run` with no set-up: a fresh key the first time, kept for later runs (the
    cases in .data/temporal.db need it). Readable by this user only."""
    path = settings.codec_keys_file
    if settings.codec_keys or path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(KeyRing.new_key_spec("local-1") + "\n", encoding="utf-8")
