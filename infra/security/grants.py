"""Decision grants: authority holds on every way in, not only through the API.

Every Update a case takes is a decision (R10, R17, R18, R19, R8, R22, ...), and its
payload names an actor and a role. Whoever reaches the Temporal frontend could send one
with `"role": "manager"`. So the authenticated edge (the API, starter.py) signs a short-
lived grant for each Update it sends: an Ed25519-signed JWT binding the workflow id, the
update's name, a digest of its argument, the actor and the role. It travels in the
Update's Temporal header (`GrantingInterceptor`, a client interceptor) and the worker
checks it before the workflow's own validator (`GrantCheckInterceptor`): no grant, a
grant from another key, for another case or update, or for another payload is refused.
Only the edge holds the private key; the worker holds the public keys (several, for
rotation). Signals cannot be refused this way (they have no validator): the production
Temporal frontend is reachable only by the API and the worker (docs/security.md)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic_core import to_jsonable_python
from temporalio import client, workflow
from temporalio.api.common.v1 import Payload
from temporalio.worker import HandleUpdateInput as WorkerUpdateInput
from temporalio.worker import (
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from domain.case import Role
from infra.case_messages import AUTHORITY, name_of
from infra.security.identity import Caller

GRANT_HEADER = "aftersales-grant"
_ISSUER = "aftersales-edge"
_AUDIENCE = "aftersales-worker"
# Long enough for an Update to reach a busy worker, short enough that a grant seen in a
# log is useless soon after.
GRANT_LIFETIME = timedelta(minutes=2)
_CLOCK_SKEW = timedelta(seconds=30)

# A grant names its Update as the wire does; who may send it is the registry's.
_AUTHORITY_BY_NAME = {name_of(update): roles for update, roles in AUTHORITY.items()}


class UnauthorisedDecisionError(ValueError):
    """An Update without a valid grant; raised in the validator, so the case never sees it."""


def key_id(public_key: Ed25519PublicKey) -> str:
    """A stable id for a grant key: the start of its raw public key's sha256."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "grant-" + hashlib.sha256(raw).hexdigest()[:16]


def argument_digest(args: Sequence[Any]) -> str:
    """sha256 of the Update's arguments as canonical JSON. Both sides hold the same
    pydantic models (the worker's are decoded from the payload), so both get one text."""
    canonical = json.dumps(to_jsonable_python(args), sort_keys=True, separators=(",", ":"))
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).decode()


class GrantSigner:
    """The edge's half: signs a grant for one Update of one caller."""

    def __init__(self, private_key: Ed25519PrivateKey, lifetime: timedelta = GRANT_LIFETIME):
        self._key = private_key
        self._kid = key_id(private_key.public_key())
        self._lifetime = lifetime

    def sign(self, *, workflow_id: str, update: str, args: Sequence[Any], caller: Caller) -> str:
        now = datetime.now(UTC)
        claims = {
            "iss": _ISSUER,
            "aud": _AUDIENCE,
            "sub": caller.actor,
            "role": caller.role.value,
            "wf": workflow_id,
            "upd": update,
            "arg": argument_digest(args),
            "iat": now,
            "exp": now + self._lifetime,
        }
        return jwt.encode(claims, self._key, algorithm="EdDSA", headers={"kid": self._kid})


class GrantVerifier:
    """The worker's half: checks the grant an Update carries (public keys only)."""

    def __init__(self, public_keys: Iterable[Ed25519PublicKey]) -> None:
        self._keys = {key_id(key): key for key in public_keys}
        if not self._keys:
            raise ValueError("a grant verifier needs at least one public key")

    def check(
        self, *, workflow_id: str, update: str, args: Sequence[Any], grant: str | None
    ) -> None:
        if grant is None:
            raise _refused(f"{update} carries no grant from the authenticated edge")
        try:
            key = self._keys.get(jwt.get_unverified_header(grant).get("kid", ""))
            if key is None:
                raise _refused(f"{update}'s grant is signed by a key this worker does not trust")
            claims = jwt.decode(
                grant, key, algorithms=["EdDSA"], issuer=_ISSUER, audience=_AUDIENCE,
                leeway=_CLOCK_SKEW,
                options={"require": ["exp", "iat", "sub", "role", "wf", "upd", "arg"]},
            )  # fmt: skip
        except jwt.PyJWTError as error:
            raise _refused(f"{update}'s grant is not valid: {error}") from error
        if (claims["wf"], claims["upd"]) != (workflow_id, update):
            raise _refused(f"the grant is for {claims['upd']} on {claims['wf']}, not this one")
        if claims["arg"] != argument_digest(args):
            raise _refused(f"{update}'s payload is not the one the grant was signed for")
        role = claims["role"]
        allowed = _AUTHORITY_BY_NAME.get(update, ())
        if role not in allowed:
            names = ", ".join(r.value for r in allowed) or "nobody"
            raise _refused(f"role {role} may not send {update} (allowed: {names})")
        [decision] = args
        # An operator's payload names who decides (R23): it must be the proven caller.
        actor_and_role = (getattr(decision, "actor", None), getattr(decision, "role", None))
        if actor_and_role != (None, None) and actor_and_role != (claims["sub"], Role(role)):
            raise _refused(
                f"actor and role {actor_and_role[0]}/{actor_and_role[1]} differ from the "
                f"proven caller {claims['sub']}/{role}"
            )


def _refused(why: str) -> UnauthorisedDecisionError:
    return UnauthorisedDecisionError(
        f"grant: {why}; decisions are taken through the API by a proven caller (R23, R17)"
    )


def load_private_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path} is not an Ed25519 public key")
    return key


# The proven caller on whose behalf Updates are sent from this task: set by the edge
# (`acting_as`), read by `GrantingInterceptor`.
_acting_caller: ContextVar[Caller | None] = ContextVar("aftersales_acting_caller", default=None)


@contextmanager
def acting_as(caller: Caller) -> Iterator[None]:
    token = _acting_caller.set(caller)
    try:
        yield
    finally:
        _acting_caller.reset(token)


class GrantingInterceptor(client.Interceptor):
    """The edge's client interceptor: each Update sent inside `acting_as(caller)` carries
    a grant for that caller; one sent outside it carries none (and will be refused)."""

    def __init__(self, signer: GrantSigner) -> None:
        self._signer = signer

    def intercept_client(self, next: client.OutboundInterceptor) -> client.OutboundInterceptor:
        return _GrantingOutbound(next, self._signer)


class _GrantingOutbound(client.OutboundInterceptor):
    def __init__(self, next: client.OutboundInterceptor, signer: GrantSigner) -> None:
        super().__init__(next)
        self._signer = signer

    async def start_workflow_update(
        self, input: client.StartWorkflowUpdateInput
    ) -> client.WorkflowUpdateHandle[Any]:
        caller = _acting_caller.get()
        if caller is not None:
            grant = self._signer.sign(
                workflow_id=input.id, update=input.update, args=input.args, caller=caller
            )
            input.headers = {**input.headers, GRANT_HEADER: _grant_payload(grant)}
        return await super().start_workflow_update(input)


def _grant_payload(grant: str) -> Payload:
    return Payload(metadata={"encoding": b"binary/plain"}, data=grant.encode())


class GrantCheckInterceptor(Interceptor):
    """The worker's interceptor: every Update's validator first checks its grant."""

    def __init__(self, verifier: GrantVerifier) -> None:
        self._verifier = verifier

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        verifier = self._verifier

        class CheckGrant(WorkflowInboundInterceptor):
            # Validators run only when an Update is first delivered, never on replay
            # (temporalio/worker/_workflow_instance.py runs handle_update_validator only
            # when the activation's `run_validator` is set, which Core clears for replay),
            # and a refused Update leaves no event in the history. So the wall clock
            # (expiry) and the current keys are safe here: a rotated key or an expired
            # grant cannot make a recorded history non-deterministic.
            def handle_update_validator(self, input: WorkerUpdateInput) -> None:
                header = input.headers.get(GRANT_HEADER)
                verifier.check(
                    workflow_id=workflow.info().workflow_id,
                    update=input.update,
                    args=input.args,
                    grant=header.data.decode() if header is not None else None,
                )
                super().handle_update_validator(input)

        return CheckGrant
