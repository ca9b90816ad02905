"""Identity and grant keys from the settings, and the development keys `make run` makes.

With nothing configured, every part uses a development key set under .data/identity
(created on first use): a staff-token signing key with its JWKS, and the decision-grant
key pair. `starter.py token` signs staff tokens with it. Those keys are for one person on
one machine: the API refuses to listen beyond loopback with them, or with no keys at all,
and says which variable to set (`refuse_unsafe_exposure`). It knows them by their key
material (infra/security/dev_key_register.py), not by a key id or a path."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.case import Role
from infra.security.dev_key_register import (
    DEV_KEY_REGISTER,
    client_secret_fingerprint,
    public_key_fingerprint,
    record,
    recorded,
)
from infra.security.grants import GrantSigner, GrantVerifier, load_private_key, load_public_key
from infra.security.identity import (
    Authenticator,
    MachineClients,
    StaffTokens,
    credential_digest,
    is_loopback,
)
from infra.settings import DATA_DIR, ConfigurationError, Settings

DEV_IDENTITY_DIR = DATA_DIR / "identity"
DEV_TOKEN_LIFETIME = timedelta(hours=8)
# The machine clients a local run starts with, by the shell variable that holds each
# credential in dev-credentials.env (the README's walkthrough sources it), with the
# carriers whose claims the carriers' desk answers (R15).
DEV_CLIENTS = {"SHOP": ("shop", Role.SERVICE, ()), "DOCK": ("dock-1", Role.WAREHOUSE, ()),
               "CARRIER": ("carrier-desk", Role.CARRIER, ("DHL", "UPS"))}  # fmt: skip


@dataclass(frozen=True)
class DevKeys:
    folder: Path

    @property
    def staff_signing_key(self) -> Path:
        return self.folder / "staff-signing-key.pem"

    @property
    def jwks(self) -> Path:
        return self.folder / "jwks.json"

    @property
    def grant_signing_key(self) -> Path:
        return self.folder / "grant-signing-key.pem"

    @property
    def grant_public_key(self) -> Path:
        return self.folder / "grant-public-key.pem"

    @property
    def credentials(self) -> Path:
        return self.folder / "dev-credentials.env"

    @property
    def key_id(self) -> str:
        # A name for people reading the key set; the guard goes by the key itself.
        return "aftersales-dev-staff-1"

    def fingerprints(self) -> list[str]:
        """The fingerprints of the development keys and clients found in the folder."""
        found = []
        if self.jwks.exists():
            keys = jwt.PyJWKSet.from_json(self.jwks.read_text()).keys
            found += [public_key_fingerprint(key.key) for key in keys]
        if self.grant_public_key.exists():
            found.append(public_key_fingerprint(load_public_key(self.grant_public_key)))
        if self.credentials.exists():
            found += [
                client_secret_fingerprint(credential_digest(line.partition("=")[2].strip()))
                for line in self.credentials.read_text().splitlines()
                if line.strip()
            ]
        return found


def ensure_dev_keys(folder: Path | None = None, register: Path = DEV_KEY_REGISTER) -> DevKeys:
    """The development keys in `folder` (default .data/identity), created if absent
    (private keys owner-only), their fingerprints in `register`."""
    folder = folder or DEV_IDENTITY_DIR
    keys = DevKeys(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if not keys.jwks.exists():
        staff = ec.generate_private_key(ec.SECP256R1())
        _write_private(keys.staff_signing_key, staff)
        public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(staff.public_key()))
        jwk = public | {"kid": keys.key_id, "use": "sig", "alg": "ES256"}
        keys.jwks.write_text(json.dumps({"keys": [jwk]}, indent=2))
    if not keys.grant_public_key.exists():
        grant = Ed25519PrivateKey.generate()
        _write_private(keys.grant_signing_key, grant)
        keys.grant_public_key.write_bytes(
            grant.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    record(keys.fingerprints(), register)
    return keys


def ensure_dev_clients(
    clients: MachineClients, folder: Path | None = None, register: Path = DEV_KEY_REGISTER
) -> Path:
    """The local run's machine clients (a shop, a dock scanner, the carriers' desk), made
    once; their credentials, which the clients file keeps only hashed, are written to a
    shell file beside the development keys (their fingerprints to `register`). Returns
    that file."""
    keys = ensure_dev_keys(folder, register)
    if not keys.credentials.exists():
        lines = [
            f"{var}={clients.add(name, role, carriers)}"
            for var, (name, role, carriers) in DEV_CLIENTS.items()
        ]
        _write_owner_only(keys.credentials, ("\n".join(lines) + "\n").encode())
        record(keys.fingerprints(), register)
    return keys.credentials


def _write_private(path: Path, key: ec.EllipticCurvePrivateKey | Ed25519PrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_owner_only(path, pem)


def _write_owner_only(path: Path, content: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)


def mint_dev_token(
    settings: Settings,
    *,
    actor: str,
    roles: list[Role],
    lifetime: timedelta = DEV_TOKEN_LIFETIME,
    folder: Path | None = None,
) -> str:
    """A staff token signed with the development key, for the configured issuer and
    audience. Refused once a real key set is configured: tokens then come from its
    identity provider."""
    if settings.jwks is not None:
        raise ConfigurationError(
            "AFTERSALES_JWKS is set: staff tokens come from that identity provider, "
            "not from starter.py"
        )
    return sign_staff_token(
        ensure_dev_keys(folder), actor=actor, roles=roles, lifetime=lifetime,
        issuer=settings.jwt_issuer, audience=settings.jwt_audience,
    )  # fmt: skip


def sign_staff_token(
    keys: DevKeys,
    *,
    actor: str,
    roles: list[Role],
    issuer: str,
    audience: str | list[str],
    lifetime: timedelta = DEV_TOKEN_LIFETIME,
) -> str:
    now = datetime.now(UTC)
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": actor,
        "roles": [role.value for role in roles],
        "iat": now,
        "exp": now + lifetime,
    }
    private = serialization.load_pem_private_key(keys.staff_signing_key.read_bytes(), None)
    if not isinstance(private, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{keys.staff_signing_key} is not the ES256 development key")
    return jwt.encode(claims, private, algorithm="ES256", headers={"kid": keys.key_id})


def authenticator(settings: Settings, folder: Path | None = None) -> Authenticator:
    jwks = settings.jwks or str(ensure_dev_keys(folder).jwks)
    staff = StaffTokens(jwks, issuer=settings.jwt_issuer, audience=settings.jwt_audience)
    return Authenticator(staff, MachineClients(settings.clients_file))


def grant_signer(settings: Settings, folder: Path | None = None) -> GrantSigner:
    path = settings.grant_signing_key or ensure_dev_keys(folder).grant_signing_key
    try:
        return GrantSigner(load_private_key(path))
    except (OSError, ValueError) as error:
        raise ConfigurationError(f"AFTERSALES_GRANT_SIGNING_KEY: {error}") from error


def grant_verifier(settings: Settings, folder: Path | None = None) -> GrantVerifier:
    paths = (
        [Path(p.strip()) for p in settings.grant_public_keys.split(",") if p.strip()]
        if settings.grant_public_keys
        else [ensure_dev_keys(folder).grant_public_key]
    )
    try:
        return GrantVerifier(load_public_key(path) for path in paths)
    except (OSError, ValueError) as error:
        raise ConfigurationError(f"AFTERSALES_GRANT_PUBLIC_KEYS: {error}") from error


def refuse_unsafe_exposure(
    settings: Settings, folder: Path | None = None, register: Path = DEV_KEY_REGISTER
) -> None:
    """ConfigurationError, naming the variable, for an API that would listen beyond
    loopback with development keys or with none configured. A development key is one whose
    fingerprint `register` holds or that is in the development folder now, under whatever
    key id, file name or folder it is configured."""
    host = settings.api_host
    if is_loopback(host):
        return
    where = f"the API listens on {host} (AFTERSALES_API_HOST), beyond loopback"
    if settings.jwks is None:
        raise ConfigurationError(
            f"AFTERSALES_JWKS: {where}, so it needs your identity provider's key set; "
            "the development key is for loopback only"
        )
    development = recorded(register) | set(DevKeys(folder or DEV_IDENTITY_DIR).fingerprints())
    try:
        staff = StaffTokens(settings.jwks, issuer=settings.jwt_issuer,
                            audience=settings.jwt_audience).public_keys()  # fmt: skip
    except (OSError, ValueError, jwt.PyJWTError) as error:
        raise ConfigurationError(f"AFTERSALES_JWKS: cannot read the key set: {error}") from error
    if any(public_key_fingerprint(key) in development for key in staff):
        raise ConfigurationError(
            f"AFTERSALES_JWKS: {where}, and its key set holds a development key"
        )
    if settings.grant_signing_key is None:
        raise ConfigurationError(
            f"AFTERSALES_GRANT_SIGNING_KEY: {where}, so it needs its own grant signing "
            "key, not the development one"
        )
    try:
        grant = load_private_key(settings.grant_signing_key).public_key()
    except (OSError, ValueError) as error:
        raise ConfigurationError(f"AFTERSALES_GRANT_SIGNING_KEY: {error}") from error
    if public_key_fingerprint(grant) in development:
        raise ConfigurationError(
            f"AFTERSALES_GRANT_SIGNING_KEY: {where}, and it is the development grant key"
        )
    try:
        clients = MachineClients(settings.clients_file).secret_digests()
    except (OSError, ValueError) as error:
        raise ConfigurationError(f"AFTERSALES_CLIENTS_FILE: cannot read it: {error}") from error
    if any(client_secret_fingerprint(digest) in development for digest in clients):
        raise ConfigurationError(
            f"AFTERSALES_CLIENTS_FILE: {where}, so it needs its own machine clients; this "
            "file holds the development ones `make run` made"
        )
    if settings.oidc_issuer is None:
        raise ConfigurationError(
            f"AFTERSALES_OIDC_ISSUER: {where}, so the desk needs your identity provider; "
            "its development sign-in (pick a person and a role) is for loopback only"
        )
