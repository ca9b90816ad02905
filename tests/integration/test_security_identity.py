"""The identity attacks of issue 9, each tried against the real API, worker, dev server
and PostgreSQL: who acts is proven (R23), and authority holds on every way in (R17)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio import client, workflow
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from activities.payments import SandboxPaymentProvider
from activities.policy_file import load_policy_file
from domain.case import CompensationOffer, Reason, Role
from domain.ledger import LedgerAction
from domain.state import CaseStatus
from domain.view import CaseView
from infra.gateway import CaseGateway
from infra.security.edge_identity import ensure_dev_clients, refuse_unsafe_exposure
from infra.security.grants import (
    GRANT_HEADER,
    GrantingInterceptor,
    GrantSigner,
    GrantVerifier,
    UnauthorisedDecisionError,
    load_private_key,
)
from infra.security.identity import Caller, MachineClients
from infra.settings import DEFAULT_POLICY_FILE, PROJECT_ROOT, ConfigurationError, Settings
from tests.conftest import a_request, eur, eventually
from tests.helpers import api_client, as_role, events, fresh_grant_key_pem
from tests.identities import AUDIENCE, IDENTITIES, ISSUER
from worker import WORKFLOWS
from workflows.return_case import ReturnCase

MARKER = "cust-attacker-7f3a"


@pytest.fixture
async def api(
    dev_env: WorkflowEnvironment, pool: asyncpg.Pool, task_queue: str, running_worker: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """The API as production runs it: its own client, whose only trust is its grant key."""
    edge = _client(dev_env, GrantingInterceptor(IDENTITIES.signer))
    gateway = CaseGateway(edge, pool, task_queue, load_policy_file(DEFAULT_POLICY_FILE))
    async with running_worker(dev_env.client), api_client(gateway) as http:
        yield http


def _client(env: WorkflowEnvironment, interceptor: client.Interceptor) -> Client:
    """A client of the test server with only `interceptor` (not the tests' trusting one)."""
    return Client(**env.client.config() | {"interceptors": [interceptor]})


def _opening(**overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    request = a_request(delivered_at=now - timedelta(days=1), requested_after=timedelta(days=1),
                        paid_minor=12_000, **overrides)  # fmt: skip
    return request.model_dump(mode="json", exclude_none=True)


async def _awaiting_photos(api: httpx.AsyncClient) -> str:
    """A defect case (R6) still waiting for the customer's photos."""
    opened = await api.post(
        "/cases", json=_opening(reason=Reason.QUALITY_DEFECT), headers=as_role("service")
    )
    case_id: str = opened.json()["case_id"]
    await eventually(
        lambda: api.get(f"/cases/{case_id}", headers=as_role("service")),
        lambda r: r.json().get("status") == CaseStatus.AWAITING_EVIDENCE,
    )
    return case_id


async def _under_review(api: httpx.AsyncClient) -> str:
    case_id = await _awaiting_photos(api)
    photos = {"event_id": "ev-1", "photos": ["https://photos.example/a.jpg"]}
    await api.post(f"/cases/{case_id}/evidence", json=photos, headers=as_role("service"))
    await eventually(
        lambda: api.get(f"/cases/{case_id}", headers=as_role("service")),
        lambda r: r.json().get("status") == CaseStatus.UNDER_REVIEW,
    )
    return case_id


async def test_spoofed_actor_header_is_ignored_the_ledger_names_the_token(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:  # R23
    """Before: `X-Actor: supervisor-bob` on an agent's token was recorded as bob."""
    case_id = await _under_review(api)
    headers = as_role("agent", "agent-ann") | {"X-Actor": "supervisor-bob"}
    decided = await api.post(f"/cases/{case_id}/decision", headers=headers,
                             json={"action_id": "d-1", "approve": True})  # fmt: skip
    assert decided.status_code == 200, decided.text
    actors = {row["actor"] for row in await events(pool, case_id)}
    assert "agent-ann" in actors
    assert "supervisor-bob" not in actors
    assert decided.json()["decided_by"] == "agent-ann"


async def test_no_token_and_a_bad_header_is_401_and_nothing_is_stored(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:  # R23
    """Before: 422 (validation ran first) and the body landed in refused_inputs."""
    body = _opening() | {"customer": {"customer_id": MARKER, "time_zone": "Mars/Base"}}
    for headers in ({"X-Actor": "not a key!"}, {"Authorization": "Bearer dev-service"},
                    {"Authorization": "Basic c2VydmljZTpzZXJ2aWNl"}):  # fmt: skip
        refused = await api.post("/cases", json=body, headers=headers)
        assert refused.status_code == 401, refused.text
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert MARKER not in refused.text
        assert refused.json()["errors"][0]["field"] == "Authorization"
    broken = await api.post("/cases", content=b'{"customer": "' + MARKER.encode() + b'"',
                            headers={"Content-Type": "application/json"})  # fmt: skip
    assert broken.status_code == 401
    kept = await pool.fetchval(
        "SELECT count(*) FROM refused_inputs WHERE strpos(payload, $1) > 0", MARKER
    )
    assert kept == 0


def _staff_token(**changes: Any) -> str:
    """A token like the identity provider's, with `changes` to its claims (None drops)."""
    now = datetime.now(UTC)
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "agent-ann", "roles": ["agent"],
              "iat": now, "exp": now + timedelta(minutes=5)} | changes  # fmt: skip
    key = IDENTITIES.keys.staff_signing_key.read_bytes()
    kid = IDENTITIES.keys.key_id
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, "ES256",
                      headers={"kid": kid})  # fmt: skip


def _stranger_token() -> str:
    stranger = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "agent-ann", "roles": ["manager"],
              "exp": now + timedelta(minutes=5)}  # fmt: skip
    return jwt.encode(claims, stranger, "ES256", headers={"kid": IDENTITIES.keys.key_id})


@pytest.mark.parametrize(
    ("token", "why"),
    [
        (lambda: _staff_token(exp=datetime.now(UTC) - timedelta(minutes=5)), "expired"),
        (lambda: _staff_token(aud="another-api"), "not for this API"),
        (lambda: _staff_token(iss="https://idp.example"), "not from issuer"),
        (lambda: _staff_token(exp=None), "not valid"),
        (lambda: jwt.encode({"sub": "x"}, "s" * 32, "HS256", headers={"kid": "other"}),
         "not trusted"),
        (lambda: jwt.encode({"sub": "x"}, "k" * 32, "HS256",
                    headers={"kid": IDENTITIES.keys.key_id}),
         "not valid"),
        (_stranger_token, "not valid"),
        # Issue 16: a roles claim of objects or nested lists was a TypeError (500).
        (lambda: _staff_token(roles=[{"a": 1}]), "roles claim"),
        (lambda: _staff_token(roles=[["manager"]]), "roles claim"),
        # Issue 16: an expiry in words ("9999999999") was read as a number and accepted.
        (lambda: _staff_token(exp="9999999999"), "exp claim is not a number"),
        (lambda: _staff_token(iat=True), "iat claim is not a number"),
        # Issue 16: a 10.6 MB validly signed token was accepted; past 8 KiB it is not read.
        (lambda: _staff_token(padding="p" * 9_000), "longer than 8192"),
    ],
    ids=["expired", "wrong-audience", "wrong-issuer", "no-expiry", "unknown-kid",
         "shared-secret-alg", "signed-by-another-key", "roles-of-objects", "roles-nested",
         "exp-a-string", "iat-a-boolean", "over-8-kib"],
)  # fmt: skip
async def test_a_token_that_proves_nothing_is_401(
    api: httpx.AsyncClient, token: Any, why: str
) -> None:  # R23
    response = await api.get("/cases", headers={"Authorization": f"Bearer {token()}"})
    assert response.status_code == 401
    assert why in response.json()["detail"]


async def test_a_refused_tokens_key_id_is_not_echoed(api: httpx.AsyncClient) -> None:
    """Issue 16: `the token's key '<kid>' is not trusted` quoted the caller's header."""
    marker = "kid-echo-5be1<script>"
    token = jwt.encode({"sub": "x"}, "s" * 32, "HS256", headers={"kid": marker})
    response = await api.get("/cases", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert "kid-echo-5be1" not in response.text


async def test_a_revoked_machine_client_is_401(api: httpx.AsyncClient) -> None:  # R23
    name = f"dock-{uuid.uuid4().hex[:6]}"
    headers = as_role("warehouse", name)
    assert (await api.post("/scans", json={"scans": []}, headers=headers)).status_code == 422
    IDENTITIES.clients.revoke(name)
    revoked = await api.post("/scans", json={"scans": []}, headers=headers)
    assert revoked.status_code == 401
    assert "revoked" in revoked.json()["detail"]
    guessed = {"Authorization": f"Bearer ac_{name}_{'A' * 43}"}
    assert (await api.get("/cases", headers=guessed)).status_code == 401


async def test_the_scanner_that_sent_the_scan_is_the_ledger_actor(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:  # R23, R26
    """Before: the ledger named the station the body claimed; now the proven scanner."""
    opened = await api.post("/cases", json=_opening(), headers=as_role("service"))
    case_id = opened.json()["case_id"]
    scan = {"barcode": case_id, "scan_id": f"s-{uuid.uuid4().hex[:8]}",
            "event": "parcel_received", "station": "DOCK-9",
            "scanned_at": datetime.now(UTC).isoformat()}  # fmt: skip
    dock = as_role("warehouse", "dock-1")
    claimed = await api.post("/scans", json={"scans": [scan | {"scanned_by": "dock-7"}]},
                             headers=dock)  # fmt: skip
    assert claimed.status_code == 422  # who scanned is not the body's to say
    sent = await api.post("/scans", json={"scans": [scan]}, headers=dock)
    assert sent.status_code == 202, sent.text
    received = await eventually(
        lambda: events(pool, case_id),
        lambda rows: any(r["action"] == LedgerAction.PARCEL_RECEIVED for r in rows),
    )
    [row] = [r for r in received if r["action"] == LedgerAction.PARCEL_RECEIVED]
    assert row["actor"] == "dock-1"


async def test_only_the_carrier_desk_answers_a_carrier_claim(api: httpx.AsyncClient) -> None:
    answer = {"response_id": "dhl-1", "accepted": True,
              "recovered": {"amount_minor": 100, "currency": "EUR"}}  # fmt: skip
    path = "/claims/claim-damage_claim-X-1-r1/carrier-response"
    assert (await api.post(path, json=answer, headers=as_role("service"))).status_code == 403
    assert (await api.post(path, json=answer, headers=as_role("carrier"))).status_code == 404


class _ForgedGrant(client.Interceptor):
    """An attacker's client: sends whatever grant it has (or none) with every Update."""

    def __init__(self, grant: str | None) -> None:
        self.grant = grant

    def intercept_client(self, next: client.OutboundInterceptor) -> client.OutboundInterceptor:
        forged = self

        class Outbound(client.OutboundInterceptor):
            async def start_workflow_update(
                self, input: client.StartWorkflowUpdateInput
            ) -> client.WorkflowUpdateHandle[Any]:
                if forged.grant is not None:
                    grant = Payload(metadata={"encoding": b"binary/plain"},
                                    data=forged.grant.encode())  # fmt: skip
                    input.headers = {**input.headers, GRANT_HEADER: grant}
                return await super().start_workflow_update(input)

        return Outbound(next)


def _ninety_as_manager(action_id: str = "c-1", minor: int = 9_000) -> CompensationOffer:
    return CompensationOffer(action_id=action_id, actor="manager-max", role=Role.MANAGER,
                             amount=eur(minor), reason="goodwill, says the attacker")  # fmt: skip


MANAGER = Caller("manager-max", Role.MANAGER)


def _grant(case_id: str, **changes: Any) -> str | None:
    """A grant for the attack's Update, as the edge would sign it, then `changes`."""
    signer: GrantSigner = changes.pop("signer", IDENTITIES.signer)
    what: dict[str, Any] = {"workflow_id": case_id, "update": "offer_compensation",
                            "args": [_ninety_as_manager()], "caller": MANAGER}  # fmt: skip
    what |= changes
    return signer.sign(**what)


@pytest.mark.parametrize(
    "forge",
    [
        lambda case_id: None,
        lambda case_id: _grant(case_id, signer=GrantSigner(Ed25519PrivateKey.generate())),
        lambda case_id: _grant(case_id, workflow_id="return-another-1-r1"),
        lambda case_id: _grant(case_id, update="escalate"),
        lambda case_id: _grant(case_id, args=[_ninety_as_manager(minor=1_000)]),
        lambda case_id: _grant(case_id, caller=Caller("agent-ann", Role.AGENT)),
        lambda case_id: _grant(case_id, caller=Caller("shop", Role.SERVICE)),
        lambda case_id: _grant(case_id, signer=GrantSigner(
            Ed25519PrivateKey.from_private_bytes(b"\x00" * 32))),
        lambda case_id: _grant(case_id, signer=_expired_signer()),
        lambda case_id: "not-a-grant",
    ],
    ids=["no-grant", "another-key", "another-workflow", "another-update", "altered-payload",
         "another-actor", "role-without-authority", "well-known-key", "expired", "garbage"],
)  # fmt: skip
async def test_a_decision_sent_straight_to_temporal_without_proof_is_refused_and_pays_nothing(
    api: httpx.AsyncClient,
    dev_env: WorkflowEnvironment,
    payments: SandboxPaymentProvider,
    pool: asyncpg.Pool,
    forge: Any,
) -> None:  # R17, R23
    """Before: an Update with `"role": "manager"` from anyone reaching the frontend paid
    90.00 EUR on a case still waiting for photos."""
    case_id = await _awaiting_photos(api)
    attacker = _client(dev_env, _ForgedGrant(forge(case_id)))
    handle = attacker.get_workflow_handle_for(ReturnCase.run, case_id)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(ReturnCase.offer_compensation, _ninety_as_manager())
    assert "grant" in str(refused.value.cause)
    assert "R23" in str(refused.value.cause)
    view: CaseView = await handle.query(ReturnCase.state)
    assert view.refunds == []
    assert payments.calls == []
    assert "manager-max" not in {r["actor"] for r in await events(pool, case_id)}


async def test_the_same_decision_through_the_api_with_a_managers_token_pays(
    api: httpx.AsyncClient, payments: SandboxPaymentProvider
) -> None:  # R17
    case_id = await _awaiting_photos(api)
    offer = {"action_id": "c-1", "amount": {"amount_minor": 9_000, "currency": "EUR"},
             "reason": "goodwill, from a proven manager"}  # fmt: skip
    paid = await api.post(f"/cases/{case_id}/compensation", json=offer,
                          headers=as_role("manager", "manager-max"))  # fmt: skip
    assert paid.status_code == 200, paid.text
    assert [amount for _, amount in payments.calls] == [eur(9_000)]


async def test_a_token_with_several_roles_acts_in_the_one_with_most_authority(
    api: httpx.AsyncClient, pool: asyncpg.Pool, payments: SandboxPaymentProvider
) -> None:  # R17, R23
    """Agent and manager: 90.00 EUR is above the agent limit, and granted as manager."""
    case_id = await _awaiting_photos(api)
    both = {"Authorization": f"Bearer {IDENTITIES.token('kim', Role.AGENT, Role.MANAGER)}"}
    offer = {"action_id": "c-1", "amount": {"amount_minor": 9_000, "currency": "EUR"},
             "reason": "goodwill, from a manager who is also an agent"}  # fmt: skip
    paid = await api.post(f"/cases/{case_id}/compensation", json=offer, headers=both)
    assert paid.status_code == 200, paid.text
    rows = await eventually(
        lambda: events(pool, case_id), lambda rows: any(r["actor"] == "kim" for r in rows)
    )
    assert any("manager kim granted 90.00 EUR" in r["reason"] for r in rows)
    assert [amount for _, amount in payments.calls] == [eur(9_000)]


async def test_an_identity_providers_subject_is_the_actor_and_reserved_ids_are_refused(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:  # R23
    """Before: `auth0|…` subjects were 401 and e-mail subjects passed authentication but
    not the decision's actor field; `aftersales-workflow` or `ac_shop` were accepted, so
    a person could sign the ledger as the workflow or a machine."""
    case_id = await _awaiting_photos(api)
    for reserved in ("aftersales-workflow", "ac_shop"):
        bearer = {"Authorization": f"Bearer {IDENTITIES.token(reserved, Role.MANAGER)}"}
        assert (await api.get(f"/cases/{case_id}", headers=bearer)).status_code == 401
    subject = "auth0|ann@example.com"
    bearer = {"Authorization": f"Bearer {IDENTITIES.token(subject, Role.AGENT)}"}
    escalation = {"action_id": "x-1", "reason": "needs a supervisor"}
    escalated = await api.post(f"/cases/{case_id}/escalation", headers=bearer, json=escalation)
    assert escalated.status_code == 200, escalated.text
    rows = await eventually(
        lambda: events(pool, case_id), lambda rows: any(r["actor"] == subject for r in rows)
    )
    assert escalated.json()["escalation"]["level"] == "supervisor"
    assert subject in {r["actor"] for r in rows}


def _expired_signer() -> GrantSigner:
    edge_key = load_private_key(IDENTITIES.keys.grant_signing_key)
    return GrantSigner(edge_key, lifetime=-timedelta(minutes=5))


def test_grant_keys_rotate_old_grants_pass_while_the_old_key_is_trusted() -> None:  # R23
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    offer = _ninety_as_manager()
    what: dict[str, Any] = {"workflow_id": "return-A-1-r1", "update": "offer_compensation",
                            "args": [offer], "caller": MANAGER}  # fmt: skip
    from_old, from_new = GrantSigner(old).sign(**what), GrantSigner(new).sign(**what)
    check: dict[str, Any] = {"workflow_id": "return-A-1-r1", "update": "offer_compensation",
                             "args": [offer]}  # fmt: skip
    during = GrantVerifier([new.public_key(), old.public_key()])
    during.check(**check, grant=from_old)
    during.check(**check, grant=from_new)
    after = GrantVerifier([new.public_key()])
    after.check(**check, grant=from_new)
    with pytest.raises(UnauthorisedDecisionError, match="does not trust"):
        after.check(**check, grant=from_old)


def test_every_update_has_a_validator_so_its_grant_is_checked() -> None:  # R23
    """The SDK runs an Update's inbound validator interceptor only for updates that have
    a validator: one without would take decisions unchecked."""
    for definition in WORKFLOWS:
        updates = workflow._Definition.must_from_class(definition).updates
        unchecked = [name for name, update in updates.items() if update.validator is None]
        assert unchecked == [], f"{definition.__name__}: {unchecked}"


@pytest.mark.parametrize(
    ("environment", "named"),
    [
        ({}, "AFTERSALES_JWKS"),
        ({"AFTERSALES_JWKS": str(IDENTITIES.keys.jwks)}, "AFTERSALES_JWKS"),
    ],
)
def test_the_api_refuses_to_listen_beyond_loopback_on_development_keys(
    environment: dict[str, str], named: str
) -> None:  # R23
    """Before: it started silently on the well-known dev-* tokens, also on 0.0.0.0."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFTERSALES_")}
    env |= environment | {"AFTERSALES_API_HOST": "0.0.0.0", "TEMPORAL_ADDRESS": "127.0.0.1:9"}
    started = subprocess.run(
        [sys.executable, "-m", "api"], env=env, cwd=PROJECT_ROOT, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert started.returncode != 0
    assert named in started.stderr
    assert "loopback" in started.stderr or "development" in started.stderr


def test_a_real_key_set_off_loopback_still_needs_its_own_grant_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # R23
    jwks = tmp_path / "jwks.json"
    jwks.write_text('{"keys": [{"kty": "EC", "crv": "P-256", "kid": "idp-1", "x": '
                    '"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": '
                    '"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}')  # fmt: skip
    monkeypatch.delenv("AFTERSALES_GRANT_SIGNING_KEY", raising=False)
    monkeypatch.setenv("AFTERSALES_JWKS", str(jwks))
    monkeypatch.setenv("AFTERSALES_API_HOST", "0.0.0.0")
    with pytest.raises(ConfigurationError, match="AFTERSALES_GRANT_SIGNING_KEY"):
        refuse_unsafe_exposure(Settings())
    monkeypatch.setenv("AFTERSALES_GRANT_SIGNING_KEY", str(IDENTITIES.keys.grant_signing_key))
    with pytest.raises(ConfigurationError, match="AFTERSALES_GRANT_SIGNING_KEY"):
        refuse_unsafe_exposure(Settings(), IDENTITIES.keys.folder)  # the development one
    monkeypatch.setenv("AFTERSALES_API_HOST", "127.0.0.1")
    refuse_unsafe_exposure(Settings())  # loopback: development keys are fine


def test_off_loopback_the_make_run_machine_clients_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # R23
    """Before: with a real key set and grant key, the API still took the shop, dock and
    carrier credentials that `make run` writes in plain text under .data/."""
    jwks = tmp_path / "jwks.json"
    jwks.write_text('{"keys": [{"kty": "EC", "crv": "P-256", "kid": "idp-1", "x": '
                    '"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": '
                    '"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}')  # fmt: skip
    grant_key = tmp_path / "grant-signing-key.pem"
    grant_key.write_bytes(fresh_grant_key_pem())
    dev_clients = MachineClients(tmp_path / "dev-clients.json")
    register = tmp_path / "fingerprints.txt"
    ensure_dev_clients(dev_clients, tmp_path / "identity", register)
    monkeypatch.setenv("AFTERSALES_JWKS", str(jwks))
    monkeypatch.setenv("AFTERSALES_GRANT_SIGNING_KEY", str(grant_key))
    monkeypatch.setenv("AFTERSALES_API_HOST", "0.0.0.0")
    monkeypatch.setenv("AFTERSALES_CLIENTS_FILE", str(tmp_path / "dev-clients.json"))
    with pytest.raises(ConfigurationError, match="AFTERSALES_CLIENTS_FILE"):
        refuse_unsafe_exposure(Settings(), tmp_path / "no-dev-keys", register)
    MachineClients(tmp_path / "clients.json").add("shop", Role.SERVICE)
    monkeypatch.setenv("AFTERSALES_CLIENTS_FILE", str(tmp_path / "clients.json"))
    # The desk's development sign-in (pick a person and a role) is for loopback only.
    monkeypatch.delenv("AFTERSALES_OIDC_ISSUER", raising=False)
    with pytest.raises(ConfigurationError, match="AFTERSALES_OIDC_ISSUER"):
        refuse_unsafe_exposure(Settings(), tmp_path / "no-dev-keys", register)
    monkeypatch.setenv("AFTERSALES_OIDC_ISSUER", "https://idp.example")
    refuse_unsafe_exposure(Settings(), tmp_path / "no-dev-keys", register)


def test_the_production_stack_file_parses_and_keeps_temporal_off_the_network() -> None:
    """docker-compose.yml cannot be run here (no Docker engine): at least it is valid,
    Temporal's gRPC port is published nowhere, the UI is read-only on loopback, and the
    worker and API get the codec keys."""
    stack = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    services = stack["services"]
    assert "ports" not in services["temporal"]
    ui = services["temporal-ui"]
    assert ui["environment"]["TEMPORAL_DISABLE_WRITE_ACTIONS"] == "true"
    assert all(port.startswith("127.0.0.1:") for port in ui["ports"])
    for name in ("worker", "api"):
        assert "AFTERSALES_CODEC_KEYS" in services[name]["environment"], name
    assert "AFTERSALES_GRANT_SIGNING_KEY" not in services["worker"]["environment"]


def test_the_production_uis_operators_sign_in_and_decode_with_their_own_token() -> None:
    """Compose's Temporal UI signs in with the identity provider the API trusts and
    passes the operator's access token to the API's codec (which checks it as any staff
    token: tests/integration/test_codec.py), over https: the UI sends a token nowhere else."""
    services = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())["services"]
    ui, api = services["temporal-ui"]["environment"], services["api"]["environment"]
    assert ui["TEMPORAL_AUTH_ENABLED"] == "true"
    assert ui["TEMPORAL_CODEC_PASS_ACCESS_TOKEN"] == "true"
    assert "TEMPORAL_CODEC_INCLUDE_CREDENTIALS" not in ui
    # One identity provider: the UI signs in where the API's tokens come from.
    issuer = "${AFTERSALES_JWT_ISSUER:?"
    assert ui["TEMPORAL_AUTH_PROVIDER_URL"].startswith(issuer)
    assert api["AFTERSALES_JWT_ISSUER"].startswith(issuer)
    assert ui["TEMPORAL_CODEC_ENDPOINT"].startswith("${AFTERSALES_CODEC_ENDPOINT:?")
    assert "https://" in ui["TEMPORAL_CODEC_ENDPOINT"]
    for setting in ("TEMPORAL_AUTH_CLIENT_ID", "TEMPORAL_AUTH_CLIENT_SECRET"):
        assert ui[setting].startswith("${AFTERSALES_UI_CLIENT_"), setting
    # The browser's origin: where the UI is published, the callback, and the codec's CORS.
    [published] = services["temporal-ui"]["ports"]
    origin = f"http://localhost:{published.split(':')[1]}"
    assert ui["TEMPORAL_AUTH_CALLBACK_URL"] == f"{origin}/auth/sso/callback"
    assert ui["TEMPORAL_CORS_ORIGINS"] == origin
    assert api["AFTERSALES_CODEC_CORS_ORIGINS"] == origin
    assert "openid" in ui["TEMPORAL_AUTH_SCOPES"].split(",")
