"""Who is calling, proven: staff by signed tokens (JWT from an OIDC provider, checked
against its key set), machines by one revocable credential each (stored hashed).

No business rules here: the edges (the HTTP API, starter.py) ask `Authenticator` who a
bearer credential belongs to, then pick the role a route acts in with `acting_role`."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from pydantic import BaseModel

from domain.case import ACTOR_ID_PATTERN, STAFF, BusinessKey, Role
from workflows.steps.casebook import SYSTEM_ACTOR

# What a staff token may confer; machines get theirs only from the clients file.
# People: staff, the platform's arbiter, and the data protection desk (erasure requests).
STAFF_TOKEN_ROLES = frozenset({*STAFF, Role.ARBITER, Role.PRIVACY})
MACHINE_ROLES = frozenset({Role.SERVICE, Role.WAREHOUSE, Role.CARRIER})
# Asymmetric only: a shared-secret (HS*) token could be minted by anyone who verifies it.
TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
                    "EdDSA"]  # fmt: skip
CLOCK_SKEW = timedelta(seconds=30)
# The longest credential read at all: an identity provider's token with a few roles is
# 1-2 KiB; anything longer is refused before it is decoded or its signature checked.
MAX_CREDENTIAL_CHARS = 8 * 1024
# RFC 7519's NumericDate claims: JSON numbers. PyJWT would read "9999999999" (a string)
# as a number; a token that says its times in words is refused.
_NUMERIC_DATE_CLAIMS = ("exp", "nbf", "iat")
# A machine credential: `ac_<client name>_<secret>`; a JWT starts with `eyJ`, so the two
# never collide, and the name finds the stored hash without trying every client.
MACHINE_CREDENTIAL_PREFIX = "ac_"
CLIENT_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
# Ids the ledger uses for others than people: a staff token may not claim them (R23).
_RESERVED_SUBJECTS = re.compile(rf"^(?:{re.escape(SYSTEM_ACTOR)}$|{MACHINE_CREDENTIAL_PREFIX})")


class Unauthenticated(Exception):
    """The credential proves nobody; the message says why (it names no secret)."""


@dataclass(frozen=True)
class Principal:
    """A proven caller: who (the ledger's actor, R23), every role they hold, and for a
    carrier's client the carriers whose claims it answers (R15)."""

    actor: str
    roles: frozenset[Role]
    carriers: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Caller:
    """A proven caller acting in one role: what the ledger records (R23); `carriers` as
    its principal's."""

    actor: str
    role: Role
    carriers: frozenset[str] = frozenset()


def acting_role(principal: Principal, allowed: Sequence[Role]) -> Role | None:
    """The role `principal` acts in where `allowed` roles may act (listed with the most
    authority first), or None: a person who is both agent and manager decides as manager,
    one who is both agent and arbiter rules as arbiter and reviews as agent."""
    return next((role for role in allowed if role in principal.roles), None)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class StaffTokens:
    """Verifies staff bearer tokens: signature by a key of the configured key set (JWKS
    file, re-read when it changes, or https URL, cached), issuer, audience, expiry."""

    def __init__(self, jwks: str, *, issuer: str, audience: str) -> None:
        self._issuer = issuer
        self._audience = audience
        self._url_keys = jwt.PyJWKClient(jwks, cache_keys=True) if _is_url(jwks) else None
        self._file = None if self._url_keys else Path(jwks)
        self._file_keys: jwt.PyJWKSet | None = None
        self._file_version: tuple[int, int] | None = None

    @property
    def fetches_keys(self) -> bool:
        """True when verifying may wait on the network (a JWKS URL): run it off the loop."""
        return self._url_keys is not None

    def public_keys(self) -> list[PublicKeyTypes]:
        """The key set's keys, for what they are (their ids are only names)."""
        keys = (
            self._url_keys.get_signing_keys()
            if self._url_keys is not None
            else self._keys_from_file().keys
        )
        return [key.key for key in keys]

    def verify(self, token: str) -> Principal:
        try:
            key_id = jwt.get_unverified_header(token).get("kid")
            if not isinstance(key_id, str):
                raise Unauthenticated("the token names no key (kid)")
            claims = jwt.decode(
                token,
                self._key(key_id),
                algorithms=TOKEN_ALGORITHMS,
                issuer=self._issuer,
                audience=self._audience,
                leeway=CLOCK_SKEW,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise Unauthenticated("the token has expired") from error
        except jwt.InvalidAudienceError as error:
            raise Unauthenticated(
                f"the token is not for this API (audience {self._audience})"
            ) from error
        except jwt.InvalidIssuerError as error:
            raise Unauthenticated(f"the token is not from issuer {self._issuer}") from error
        except jwt.PyJWTError as error:
            raise Unauthenticated(f"the token is not valid: {error}") from error
        _numeric_dates(claims)
        return staff_principal(claims)

    def _key(self, key_id: str) -> jwt.PyJWK:
        if self._url_keys is not None:
            try:
                return self._url_keys.get_signing_key(key_id)
            except jwt.PyJWKClientError as error:
                raise Unauthenticated(_UNTRUSTED_KEY) from error
        try:
            return self._keys_from_file()[key_id]
        except KeyError as error:
            raise Unauthenticated(_UNTRUSTED_KEY) from error

    def _keys_from_file(self) -> jwt.PyJWKSet:
        assert self._file is not None
        stat = self._file.stat()
        version = (stat.st_mtime_ns, stat.st_size)
        if self._file_keys is None or version != self._file_version:
            self._file_keys = jwt.PyJWKSet.from_json(self._file.read_text())
            self._file_version = version
        return self._file_keys


# The key id is not quoted back: an answer never echoes what it refuses.
_UNTRUSTED_KEY = "the token's key (kid) is not trusted by this API"


def _is_url(jwks: str) -> bool:
    return jwks.startswith("https://")


def staff_principal(claims: dict[str, Any]) -> Principal:
    """The person verified claims name (`sub`) and the staff roles they confer (`roles`):
    a staff token's, and the desk's OIDC ID token's (desk/oidc.py)."""
    return Principal(actor=_subject(claims), roles=_staff_roles(claims.get("roles")))


def _subject(claims: dict[str, Any]) -> str:
    subject = claims["sub"]
    # The actor is written into the ledger and shown to people: a key, not free text.
    if not isinstance(subject, str) or not re.fullmatch(ACTOR_ID_PATTERN, subject):
        raise Unauthenticated("the token's subject is not a staff id")
    if _RESERVED_SUBJECTS.match(subject):
        raise Unauthenticated("the token's subject names the workflow or a machine client")
    return subject


def _numeric_dates(claims: dict[str, Any]) -> None:
    for name in _NUMERIC_DATE_CLAIMS:
        value = claims.get(name)
        if name in claims and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise Unauthenticated(f"the token's {name} claim is not a number (RFC 7519)")


def _staff_roles(claim: object) -> frozenset[Role]:
    """`roles` as a list of names (or one name); roles this API does not know confer
    nothing. Anything else in the claim (an object, a nested list) is a malformed token."""
    names = [claim] if isinstance(claim, str) else claim if isinstance(claim, list) else []
    if not all(isinstance(name, str) for name in names):
        raise Unauthenticated("the token's roles claim is not a list of role names")
    return frozenset(Role(n) for n in names if n in {r.value for r in STAFF_TOKEN_ROLES})


class MachineClient(BaseModel):
    role: Role
    # A carrier's client answers the claims against these carriers only (R15), named as
    # the orders name them; none (a file from before) answers none.
    carriers: list[BusinessKey] = []
    secret_sha256: str
    created_at: datetime
    revoked_at: datetime | None = None


class MachineClientsFile(BaseModel):
    clients: dict[str, MachineClient] = {}


class MachineClients:
    """One credential per machine client (a backend service, a scanner, the carriers'
    desk) in a JSON file: the sha256 of a 32-byte random secret, never the secret. The
    file is re-read when it changes, so `starter.py client revoke` takes effect at once."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._loaded = MachineClientsFile()
        self._version: tuple[int, int] | None = None

    def verify(self, credential: str) -> Principal:
        name, _, secret = credential.removeprefix(MACHINE_CREDENTIAL_PREFIX).partition("_")
        client = self._current().clients.get(name)
        # Compared even for an unknown name, so timing does not tell which names exist.
        stored = client.secret_sha256 if client else "0" * 64
        if not hmac.compare_digest(_digest(secret), stored) or client is None:
            raise Unauthenticated("the machine credential is not valid")
        if client.revoked_at is not None:
            raise Unauthenticated(f"the machine credential of {name} was revoked")
        return Principal(
            actor=name, roles=frozenset({client.role}), carriers=frozenset(client.carriers)
        )

    def secret_digests(self) -> frozenset[str]:
        """The stored hash of every client's secret, revoked ones included."""
        return frozenset(client.secret_sha256 for client in self._current().clients.values())

    def add(self, name: str, role: Role, carriers: Sequence[str] = ()) -> str:
        """A new client (or a new credential for an existing one); returns the credential,
        which is shown once: only its hash is kept. A carrier's client names the carriers
        whose claims it answers; no other client names any."""
        if not re.fullmatch(CLIENT_NAME_PATTERN, name):
            raise ValueError(f"name: {name!r} must match {CLIENT_NAME_PATTERN}")
        if role not in MACHINE_ROLES:
            allowed = ", ".join(sorted(r.value for r in MACHINE_ROLES))
            raise ValueError(f"role: {role.value} is not a machine role ({allowed})")
        if (role is Role.CARRIER) != bool(carriers):
            raise ValueError(
                "carrier: a carrier client names the carriers whose claims it answers (R15)"
                if role is Role.CARRIER
                else f"carrier: only a carrier client answers claims, not a {role.value} one"
            )
        secret = secrets.token_urlsafe(32)
        client = MachineClient(role=role, carriers=list(carriers),
                               secret_sha256=_digest(secret), created_at=_now())  # fmt: skip
        clients = self._current().clients | {name: client}
        self._write(MachineClientsFile(clients=clients))
        return f"{MACHINE_CREDENTIAL_PREFIX}{name}_{secret}"

    def revoke(self, name: str) -> None:
        current = self._current().clients
        if name not in current:
            raise KeyError(f"name: no machine client {name!r}")
        revoked = current[name].model_copy(update={"revoked_at": _now()})
        self._write(MachineClientsFile(clients=current | {name: revoked}))

    def _current(self) -> MachineClientsFile:
        try:
            stat = self._path.stat()
        except FileNotFoundError:
            return MachineClientsFile()
        version = (stat.st_mtime_ns, stat.st_size)
        if version != self._version:
            self._loaded = MachineClientsFile.model_validate_json(self._path.read_bytes())
            self._version = version
        return self._loaded

    def _write(self, clients: MachineClientsFile) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        staged = self._path.with_suffix(".tmp")
        # Hashes only, but still nobody else's business: owner-only, replaced atomically.
        descriptor = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(clients.model_dump_json(indent=2))
        os.replace(staged, self._path)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def credential_digest(credential: str) -> str:
    """The hash a clients file keeps of a machine credential's secret."""
    return _digest(credential.removeprefix(MACHINE_CREDENTIAL_PREFIX).partition("_")[2])


def _now() -> datetime:
    return datetime.now(UTC)


class Authenticator:
    """A bearer credential to the caller it proves, or Unauthenticated."""

    def __init__(self, staff: StaffTokens, machines: MachineClients) -> None:
        self.staff = staff
        self.machines = machines

    def authenticate(self, credential: str) -> Principal:
        if len(credential) > MAX_CREDENTIAL_CHARS:
            raise Unauthenticated(f"the token is longer than {MAX_CREDENTIAL_CHARS} characters")
        if credential.startswith(MACHINE_CREDENTIAL_PREFIX):
            return self.machines.verify(credential)
        return self.staff.verify(credential)


def parse_bearer(authorization: str | None) -> str:
    """The credential of an `Authorization: Bearer ...` header, or Unauthenticated."""
    if not authorization:
        raise Unauthenticated("a bearer token is required")
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise Unauthenticated("the Authorization header must be `Bearer <token>`")
    return credential.strip()
