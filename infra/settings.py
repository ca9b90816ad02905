"""Configuration from the environment, validated at start-up with a clear message."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import (
    AliasChoices,
    AnyHttpUrl,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from activities.payments import JournaledSandboxPaymentProvider
from infra.outside.service import Endpoint

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / ".data"
DEFAULT_POLICY_FILE = PROJECT_ROOT / "policy.toml"
EMBEDDED_POSTGRES_DIR = DATA_DIR / "postgres"
# `make run` creates it with one fresh key when absent; see infra/security/data_converter.py.
LOCAL_CODEC_KEYS_FILE = DATA_DIR / "codec-keys"
# Refused inputs kept per client and minute before its writes answer 429 (api/refusal_budget).
DEFAULT_REFUSALS_PER_MINUTE = 120
# Enough for every open case to stay cached: a cache miss replays the whole history.
DEFAULT_MAX_CACHED_WORKFLOWS = 10_000


class OutsideSystem(StrEnum):
    """The outside systems a configuration points at the sandbox or an HTTP service; each
    has AFTERSALES_<NAME>_URL and AFTERSALES_<NAME>_SECRET."""

    PAYMENTS = "payments"
    MESSAGING = "messaging"
    WAREHOUSE = "warehouse"
    CARRIER = "carrier"


def embedded_database_url() -> str:
    """Where `make run`'s embedded PostgreSQL listens: a Unix socket in its data folder."""
    return f"postgresql://postgres@/postgres?host={EMBEDDED_POSTGRES_DIR}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    temporal_address: Annotated[
        str,
        Field(validation_alias=AliasChoices("TEMPORAL_ADDRESS"), pattern=r"^[^\s:/]+:\d{1,5}$"),
    ] = "localhost:7233"
    temporal_namespace: Annotated[
        str, Field(validation_alias=AliasChoices("TEMPORAL_NAMESPACE"), min_length=1)
    ] = "default"
    # A Temporal cluster behind TLS or Temporal Cloud (docs/scaling.md): mTLS with a client
    # certificate and key (PEM files), or an API key; either turns TLS on. The server's CA
    # only when it is not in the system's trust store (a self-hosted cluster's own CA).
    temporal_tls_client_cert_path: Annotated[
        Path | None, Field(validation_alias=AliasChoices("TEMPORAL_TLS_CLIENT_CERT_PATH"))
    ] = None
    temporal_tls_client_key_path: Annotated[
        Path | None, Field(validation_alias=AliasChoices("TEMPORAL_TLS_CLIENT_KEY_PATH"))
    ] = None
    temporal_tls_server_ca_cert_path: Annotated[
        Path | None, Field(validation_alias=AliasChoices("TEMPORAL_TLS_SERVER_CA_CERT_PATH"))
    ] = None
    temporal_api_key: Annotated[
        SecretStr | None, Field(validation_alias=AliasChoices("TEMPORAL_API_KEY"), min_length=1)
    ] = None
    # Workflows a worker keeps in memory between tasks; one evicted replays its history on
    # its next task (docs/scaling.md measures both).
    max_cached_workflows: Annotated[
        int, Field(validation_alias=AliasChoices("AFTERSALES_MAX_CACHED_WORKFLOWS"), ge=0)
    ] = DEFAULT_MAX_CACHED_WORKFLOWS
    task_queue: Annotated[
        str, Field(validation_alias=AliasChoices("AFTERSALES_TASK_QUEUE"), min_length=1)
    ] = "aftersales"
    policy_file: Annotated[Path, Field(validation_alias=AliasChoices("AFTERSALES_POLICY_FILE"))] = (
        DEFAULT_POLICY_FILE
    )
    # Staff bearer tokens (docs/security.md): the identity provider's key set (a JWKS file
    # or https URL), issuer and audience. Unset JWKS: the development key set that
    # `make run` creates under .data/identity, accepted on a loopback API only.
    jwks: Annotated[str | None, Field(validation_alias=AliasChoices("AFTERSALES_JWKS"))] = None
    jwt_issuer: Annotated[
        str, Field(validation_alias=AliasChoices("AFTERSALES_JWT_ISSUER"), min_length=1)
    ] = "aftersales-dev"
    jwt_audience: Annotated[
        str, Field(validation_alias=AliasChoices("AFTERSALES_JWT_AUDIENCE"), min_length=1)
    ] = "aftersales-api"
    # Machine clients (services, scanners, the carriers' desk): hashed credentials.
    clients_file: Annotated[
        Path, Field(validation_alias=AliasChoices("AFTERSALES_CLIENTS_FILE"))
    ] = DATA_DIR / "clients.json"
    # Decision grants (infra/security/grants.py): the edge's Ed25519 private key (PEM) and the
    # worker's trusted public keys (PEM files, comma-separated: old ones stay during a
    # rotation). Unset: the development pair under .data/identity.
    grant_signing_key: Annotated[
        Path | None, Field(validation_alias=AliasChoices("AFTERSALES_GRANT_SIGNING_KEY"))
    ] = None
    grant_public_keys: Annotated[
        str | None, Field(validation_alias=AliasChoices("AFTERSALES_GRANT_PUBLIC_KEYS"))
    ] = None
    api_host: Annotated[str, Field(validation_alias=AliasChoices("AFTERSALES_API_HOST"))] = (
        "127.0.0.1"
    )
    api_port: Annotated[
        int, Field(validation_alias=AliasChoices("AFTERSALES_API_PORT"), ge=1, le=65535)
    ] = 8000
    # The payload codec's master keys, newest first: `id:base64key,...` (32-byte keys).
    # Unset: read from codec_keys_file, which `make run` creates for local development.
    codec_keys: Annotated[
        str | None, Field(validation_alias=AliasChoices("AFTERSALES_CODEC_KEYS"))
    ] = None
    codec_keys_file: Annotated[
        Path, Field(validation_alias=AliasChoices("AFTERSALES_CODEC_KEYS_FILE"))
    ] = LOCAL_CODEC_KEYS_FILE
    # The browser origins allowed to call the codec server (the Temporal UI's).
    codec_cors_origins: Annotated[
        str, Field(validation_alias=AliasChoices("AFTERSALES_CODEC_CORS_ORIGINS"))
    ] = "http://localhost:8233"
    # The sandbox payment provider's book (it outlives worker restarts, like a real one's)
    # and how long it takes to answer (the fault tests make it slow).
    sandbox_payments_journal: Annotated[
        Path, Field(validation_alias=AliasChoices("AFTERSALES_SANDBOX_PAYMENTS_JOURNAL"))
    ] = DATA_DIR / "sandbox-payments.jsonl"
    sandbox_payments_delay: Annotated[
        timedelta,
        Field(validation_alias=AliasChoices("AFTERSALES_SANDBOX_PAYMENTS_DELAY"), ge=timedelta(0)),
    ] = timedelta(0)
    # The desk's sign-in (desk/): the OpenID Connect provider staff sign in with (its
    # issuer URL, where /.well-known/openid-configuration is found) and this desk's client
    # there (a confidential client's secret, or none for a public client: PKCE either way).
    # Unset: the development sign-in (pick a person and a role), on a loopback API only.
    oidc_issuer: Annotated[
        str | None, Field(validation_alias=AliasChoices("AFTERSALES_OIDC_ISSUER"))
    ] = None
    oidc_client_id: Annotated[
        str, Field(validation_alias=AliasChoices("AFTERSALES_OIDC_CLIENT_ID"), min_length=1)
    ] = "aftersales-desk"
    oidc_client_secret: Annotated[
        str | None, Field(validation_alias=AliasChoices("AFTERSALES_OIDC_CLIENT_SECRET"))
    ] = None
    # Where the desk links a case's run: the Temporal UI's base URL.
    temporal_ui_url: Annotated[
        str, Field(validation_alias=AliasChoices("AFTERSALES_TEMPORAL_UI_URL"),
                   pattern=r"^https?://[^\s]+$")
    ] = "http://localhost:8233"  # fmt: skip
    # How many of one client's inputs may be refused (and kept) per minute before its
    # writes answer 429 with Retry-After (docs/security.md).
    refused_inputs_per_minute: Annotated[
        int,
        Field(validation_alias=AliasChoices("AFTERSALES_REFUSED_INPUTS_PER_MINUTE"), ge=1),
    ] = DEFAULT_REFUSALS_PER_MINUTE
    # The worker's status port (docs/operations.md, "Seen working"): /metrics (the SDK's
    # own), /healthz, /readyz. Loopback unless a scraper elsewhere must reach it.
    worker_status_host: Annotated[
        str, Field(validation_alias=AliasChoices("AFTERSALES_WORKER_STATUS_HOST"))
    ] = "127.0.0.1"
    worker_status_port: Annotated[
        int, Field(validation_alias=AliasChoices("AFTERSALES_WORKER_STATUS_PORT"), ge=1, le=65535)
    ] = 9464
    # Traces go out over OTLP/HTTP only when a collector is named (the standard variable,
    # read by the exporter too); unset, nothing is exported.
    otlp_endpoint: Annotated[
        str | None, Field(validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT"))
    ] = None
    # The outside systems (docs/operations.md, "Outside systems"): a service URL switches
    # one from the sandbox to its HTTP adapter, whose requests are signed with the secret.
    payments_url: Annotated[
        AnyHttpUrl | None, Field(validation_alias=AliasChoices("AFTERSALES_PAYMENTS_URL"))
    ] = None
    payments_secret: Annotated[
        SecretStr | None, Field(validation_alias=AliasChoices("AFTERSALES_PAYMENTS_SECRET"))
    ] = None
    messaging_url: Annotated[
        AnyHttpUrl | None, Field(validation_alias=AliasChoices("AFTERSALES_MESSAGING_URL"))
    ] = None
    messaging_secret: Annotated[
        SecretStr | None, Field(validation_alias=AliasChoices("AFTERSALES_MESSAGING_SECRET"))
    ] = None
    warehouse_url: Annotated[
        AnyHttpUrl | None, Field(validation_alias=AliasChoices("AFTERSALES_WAREHOUSE_URL"))
    ] = None
    warehouse_secret: Annotated[
        SecretStr | None, Field(validation_alias=AliasChoices("AFTERSALES_WAREHOUSE_SECRET"))
    ] = None
    carrier_url: Annotated[
        AnyHttpUrl | None, Field(validation_alias=AliasChoices("AFTERSALES_CARRIER_URL"))
    ] = None
    carrier_secret: Annotated[
        SecretStr | None, Field(validation_alias=AliasChoices("AFTERSALES_CARRIER_SECRET"))
    ] = None
    # One call's limit (connect, send, wait for the answer); past it Temporal retries.
    outside_timeout: Annotated[
        timedelta,
        Field(
            validation_alias=AliasChoices("AFTERSALES_OUTSIDE_TIMEOUT"),
            gt=timedelta(0),
            le=timedelta(seconds=25),  # inside the activities' 30 s start-to-close
        ),
    ] = timedelta(seconds=10)
    # What the sandbox systems refuse (SKUs out of stock, orders already shipped, declined
    # payments, carriers that reject claims): a TOML file, see docs/operations.md.
    sandbox_file: Annotated[
        Path | None, Field(validation_alias=AliasChoices("AFTERSALES_SANDBOX_FILE"))
    ] = None
    # Unset means the embedded PostgreSQL that `make run` starts under .data/.
    database_url: Annotated[str | None, Field(validation_alias=AliasChoices("DATABASE_URL"))] = None

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgres://", "postgresql://")):
            raise ValueError("must be a postgresql:// URL")
        return value or None

    @model_validator(mode="after")
    def _client_cert_with_its_key(self) -> Settings:
        if (self.temporal_tls_client_cert_path is None) != (
            self.temporal_tls_client_key_path is None
        ):
            raise ValueError(
                "TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH: set both "
                "for mTLS, or neither"
            )
        return self

    @model_validator(mode="after")
    def _secret_with_each_url(self) -> Settings:
        for system in OutsideSystem:
            url, secret = getattr(self, f"{system}_url"), getattr(self, f"{system}_secret")
            if url is not None and (secret is None or len(secret.get_secret_value()) < 32):
                raise ValueError(
                    f"AFTERSALES_{system.upper()}_SECRET: at least 32 characters, to sign the "
                    f"requests to AFTERSALES_{system.upper()}_URL"
                )
        return self

    def endpoint(self, system: OutsideSystem) -> Endpoint | None:
        """The system's HTTP service, or None for its sandbox."""
        url: AnyHttpUrl | None = getattr(self, f"{system}_url")
        secret: SecretStr | None = getattr(self, f"{system}_secret")
        if url is None or secret is None:
            return None
        return Endpoint(str(url), secret.get_secret_value().encode(), self.outside_timeout)

    def sandbox_payments(
        self, declined_orders: set[str] | None = None
    ) -> JournaledSandboxPaymentProvider:
        self.sandbox_payments_journal.parent.mkdir(parents=True, exist_ok=True)
        return JournaledSandboxPaymentProvider(
            journal=self.sandbox_payments_journal,
            answer_delay=self.sandbox_payments_delay,
            declined_orders=declined_orders or set(),
        )

    @property
    def codec_origins(self) -> list[str]:
        return [origin.strip() for origin in self.codec_cors_origins.split(",") if origin.strip()]

    @property
    def uses_embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def effective_database_url(self) -> str:
        return self.database_url or embedded_database_url()


_ENV_NAMES = {
    "temporal_address": "TEMPORAL_ADDRESS",
    "temporal_namespace": "TEMPORAL_NAMESPACE",
    "task_queue": "AFTERSALES_TASK_QUEUE",
    "temporal_tls_client_cert_path": "TEMPORAL_TLS_CLIENT_CERT_PATH",
    "temporal_tls_client_key_path": "TEMPORAL_TLS_CLIENT_KEY_PATH",
    "temporal_tls_server_ca_cert_path": "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
    "temporal_api_key": "TEMPORAL_API_KEY",
    "max_cached_workflows": "AFTERSALES_MAX_CACHED_WORKFLOWS",
    "database_url": "DATABASE_URL",
    "policy_file": "AFTERSALES_POLICY_FILE",
    "jwks": "AFTERSALES_JWKS",
    "jwt_issuer": "AFTERSALES_JWT_ISSUER",
    "jwt_audience": "AFTERSALES_JWT_AUDIENCE",
    "clients_file": "AFTERSALES_CLIENTS_FILE",
    "grant_signing_key": "AFTERSALES_GRANT_SIGNING_KEY",
    "grant_public_keys": "AFTERSALES_GRANT_PUBLIC_KEYS",
    "api_port": "AFTERSALES_API_PORT",
    "api_host": "AFTERSALES_API_HOST",
    "sandbox_payments_journal": "AFTERSALES_SANDBOX_PAYMENTS_JOURNAL",
    "sandbox_payments_delay": "AFTERSALES_SANDBOX_PAYMENTS_DELAY",
    "codec_keys": "AFTERSALES_CODEC_KEYS",
    "codec_keys_file": "AFTERSALES_CODEC_KEYS_FILE",
    "codec_cors_origins": "AFTERSALES_CODEC_CORS_ORIGINS",
    "oidc_issuer": "AFTERSALES_OIDC_ISSUER",
    "oidc_client_id": "AFTERSALES_OIDC_CLIENT_ID",
    "oidc_client_secret": "AFTERSALES_OIDC_CLIENT_SECRET",
    "temporal_ui_url": "AFTERSALES_TEMPORAL_UI_URL",
    "refused_inputs_per_minute": "AFTERSALES_REFUSED_INPUTS_PER_MINUTE",
    **{
        f"{system}_{part}": f"AFTERSALES_{system.upper()}_{part.upper()}"
        for system in OutsideSystem
        for part in ("url", "secret")
    },
    "outside_timeout": "AFTERSALES_OUTSIDE_TIMEOUT",
    "worker_status_host": "AFTERSALES_WORKER_STATUS_HOST",
    "worker_status_port": "AFTERSALES_WORKER_STATUS_PORT",
    "otlp_endpoint": "OTEL_EXPORTER_OTLP_ENDPOINT",
    "sandbox_file": "AFTERSALES_SANDBOX_FILE",
}


class ConfigurationError(Exception):
    pass


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"{_ENV_NAMES.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']}"
            if e["loc"]
            else e["msg"]  # a check across fields names its variables itself
            for e in error.errors()
        )
        raise ConfigurationError(f"invalid configuration: {problems}") from error
