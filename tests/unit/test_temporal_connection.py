"""Pointing the project at a Temporal cluster or Temporal Cloud is configuration alone
(docs/scaling.md): namespace, mTLS files and API key reach Client.connect."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import asyncpg
import pytest
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.service import TLSConfig

from infra import temporal_client
from infra.security.codec import KeyRing
from infra.settings import ConfigurationError, load_settings

CONNECTION_VARIABLES = (
    "TEMPORAL_ADDRESS",
    "TEMPORAL_NAMESPACE",
    "TEMPORAL_TLS_CLIENT_CERT_PATH",
    "TEMPORAL_TLS_CLIENT_KEY_PATH",
    "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
    "TEMPORAL_API_KEY",
    "AFTERSALES_MAX_CACHED_WORKFLOWS",
)


@pytest.fixture
def connect_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What Client.connect was asked for; no server is needed to see it."""
    for name in CONNECTION_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AFTERSALES_CODEC_KEYS", KeyRing.new_key_spec("test-1"))
    calls: list[dict[str, Any]] = []

    async def recording_connect(address: str, **options: Any) -> Client:
        calls.append({"address": address, **options})
        return cast(Client, None)

    monkeypatch.setattr(Client, "connect", recording_connect)
    return calls


async def connect_with_environment() -> None:
    # The pool only stores data keys when a payload is sealed; nothing is sealed here.
    await temporal_client.connect(load_settings(), cast(asyncpg.Pool, None))


async def test_the_dev_server_is_plain_grpc(connect_calls: list[dict[str, Any]]) -> None:
    await connect_with_environment()
    (call,) = connect_calls
    assert (call["address"], call["namespace"], call["tls"], call["api_key"]) == (
        "localhost:7233",
        "default",
        False,
        None,
    )


async def test_mtls_files_and_namespace_reach_the_client(
    connect_calls: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    files = {}
    for part in ("CLIENT_CERT", "CLIENT_KEY", "SERVER_CA_CERT"):
        files[part] = tmp_path / f"{part.lower()}.pem"
        files[part].write_bytes(f"-----BEGIN {part}-----".encode())
        monkeypatch.setenv(f"TEMPORAL_TLS_{part}_PATH", str(files[part]))
    monkeypatch.setenv("TEMPORAL_ADDRESS", "merchant.a1b2c.tmprl.cloud:7233")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "merchant.a1b2c")
    await connect_with_environment()
    (call,) = connect_calls
    assert (call["address"], call["namespace"], call["api_key"]) == (
        "merchant.a1b2c.tmprl.cloud:7233",
        "merchant.a1b2c",
        None,
    )
    assert call["tls"] == TLSConfig(
        server_root_ca_cert=b"-----BEGIN SERVER_CA_CERT-----",
        client_cert=b"-----BEGIN CLIENT_CERT-----",
        client_private_key=b"-----BEGIN CLIENT_KEY-----",
    )


async def test_an_api_key_goes_over_tls(
    connect_calls: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMPORAL_API_KEY", "an-api-key-from-temporal-cloud")
    await connect_with_environment()
    (call,) = connect_calls
    assert (call["tls"], call["api_key"]) == (True, "an-api-key-from-temporal-cloud")


def test_a_client_certificate_without_its_key_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("TEMPORAL_TLS_CLIENT_KEY_PATH", raising=False)
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", str(tmp_path / "client.pem"))
    with pytest.raises(ConfigurationError, match="TEMPORAL_TLS_CLIENT_KEY_PATH"):
        load_settings()


def test_the_worker_cache_size_is_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFTERSALES_MAX_CACHED_WORKFLOWS", "500")
    assert load_settings().max_cached_workflows == 500
    monkeypatch.setenv("AFTERSALES_MAX_CACHED_WORKFLOWS", "-1")
    with pytest.raises(ConfigurationError, match="AFTERSALES_MAX_CACHED_WORKFLOWS"):
        load_settings()


async def test_set_up_connects_the_same_way_without_the_codec(
    connect_calls: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`starter.py setup` and the search-attribute set-up reach the same cluster: a Cloud
    namespace's API key goes with them, and no codec keys are needed."""
    monkeypatch.delenv("AFTERSALES_CODEC_KEYS")
    monkeypatch.setenv("TEMPORAL_API_KEY", "an-api-key-from-temporal-cloud")
    await temporal_client.connect_for_operations(load_settings())
    (call,) = connect_calls
    assert (call["tls"], call["api_key"], call["data_converter"]) == (
        True,
        "an-api-key-from-temporal-cloud",
        DataConverter.default,
    )
