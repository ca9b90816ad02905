"""Proven identities for the tests: one key set, machine clients and an edge grant key
for the whole run, in a temporary folder, built with the same code as `make run`'s."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import client

from domain.case import Role
from infra.security.edge_identity import DevKeys, ensure_dev_keys, sign_staff_token
from infra.security.grants import (
    GrantingInterceptor,
    GrantSigner,
    GrantVerifier,
    acting_as,
    load_private_key,
    load_public_key,
)
from infra.security.identity import (
    MACHINE_ROLES,
    Authenticator,
    Caller,
    MachineClients,
    StaffTokens,
)

ISSUER, AUDIENCE = "aftersales-dev", "aftersales-api"
# Whose claims a carrier client of the tests answers unless it names others: the carrier
# the tests' damage claims are against (R15).
TEST_CARRIERS = ("DHL",)


class Identities:
    def __init__(self, folder: Path) -> None:
        self.keys: DevKeys = ensure_dev_keys(folder)
        self.clients = MachineClients(folder / "clients.json")
        self.authenticator = Authenticator(
            StaffTokens(str(self.keys.jwks), issuer=ISSUER, audience=AUDIENCE), self.clients
        )
        self.signer = GrantSigner(load_private_key(self.keys.grant_signing_key))
        self.verifier = GrantVerifier([load_public_key(self.keys.grant_public_key)])
        self._credentials: dict[str, str] = {}

    def token(
        self,
        actor: str,
        *roles: Role,
        lifetime: timedelta = timedelta(hours=1),
        audience: str | list[str] = AUDIENCE,
    ) -> str:
        return sign_staff_token(
            self.keys, actor=actor, roles=list(roles), issuer=ISSUER, audience=audience,
            lifetime=lifetime,
        )  # fmt: skip

    def credential(self, name: str, role: Role, carriers: tuple[str, ...] = TEST_CARRIERS) -> str:
        """A machine client's credential, made once per name for the run (a carrier's
        answering for `carriers`)."""
        if name not in self._credentials:
            named = carriers if role is Role.CARRIER else ()
            self._credentials[name] = self.clients.add(name, role, named)
        return self._credentials[name]

    def bearer(self, role: Role | str, actor: str | None = None) -> dict[str, str]:
        """Headers of a caller proven in `role` (a machine client or a staff token)."""
        role = Role(role)
        name = actor or f"test-{role.value}"
        proof = self.credential(name, role) if role in MACHINE_ROLES else self.token(name, role)
        return {"Authorization": f"Bearer {proof}"}

    def environment(self) -> dict[str, str]:
        """The settings a separately started API and worker need to trust these keys."""
        return {
            "AFTERSALES_JWKS": str(self.keys.jwks),
            "AFTERSALES_JWT_ISSUER": ISSUER,
            "AFTERSALES_JWT_AUDIENCE": AUDIENCE,
            "AFTERSALES_CLIENTS_FILE": str(self.clients_file),
            "AFTERSALES_GRANT_SIGNING_KEY": str(self.keys.grant_signing_key),
            "AFTERSALES_GRANT_PUBLIC_KEYS": str(self.keys.grant_public_key),
        }

    @property
    def clients_file(self) -> Path:
        return self.keys.folder / "clients.json"


IDENTITIES = Identities(Path(tempfile.mkdtemp(prefix="aftersales-identities-")))


class PayloadTrustingGrants(GrantingInterceptor):
    """For tests that drive workflows straight through a Temporal client, standing in for
    the API: an Update gets a grant for the actor and role its own payload names (a
    customer's choice, for a backend service). Never in the product: it is exactly the
    trust the grants take away. The security tests use a plain edge client instead."""

    def intercept_client(self, next: client.OutboundInterceptor) -> client.OutboundInterceptor:
        return _PayloadCaller(super().intercept_client(next))


class _PayloadCaller(client.OutboundInterceptor):
    async def start_workflow_update(
        self, input: client.StartWorkflowUpdateInput
    ) -> client.WorkflowUpdateHandle[Any]:
        [decision] = input.args
        actor, role = getattr(decision, "actor", None), getattr(decision, "role", None)
        caller = Caller(actor, role) if actor and role else Caller("test-service", Role.SERVICE)
        with acting_as(caller):
            return await super().start_workflow_update(input)


TRUSTING_EDGE = PayloadTrustingGrants(IDENTITIES.signer)
