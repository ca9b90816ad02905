"""Property-based run of schemathesis against the API's own OpenAPI schema, with all of
its checks: never a 500, every status answered is documented (with the error model for
every error), answers match their documented schemas and content types, invalid data is
refused, valid data accepted. The API and the worker run as their own processes
(`python -m api`, `worker.py`) against the dev server and PostgreSQL."""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import CHECKS, is_check_class, load_all_checks
from schemathesis.config import ChecksConfig
from schemathesis.core.result import Ok
from temporalio.testing import WorkflowEnvironment

from domain.case import Role
from tests.identities import AUDIENCE, IDENTITIES, ISSUER
from tests.processes import free_port, start_process

TOKENS = {
    role: IDENTITIES.bearer(role, f"fuzz-{role.value}")
    for role in (Role.SERVICE, Role.WAREHOUSE, Role.CARRIER, Role.AGENT, Role.ARBITER, Role.MANAGER)
}


@pytest.fixture(scope="session")
def api_url(
    dev_env: WorkflowEnvironment, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    port = free_port()
    env = os.environ | {
        "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "DATABASE_URL": database_url,
        "AFTERSALES_TASK_QUEUE": "aftersales-fuzz",
        "AFTERSALES_API_PORT": str(port),
        # The fuzzer is one client per role sending mostly bad input on purpose: a budget
        # for refused input (tests/integration/test_security_input.py) would stop it early.
        "AFTERSALES_REFUSED_INPUTS_PER_MINUTE": "1000000",
        **IDENTITIES.environment(),
    }
    logs = tmp_path_factory.mktemp("fuzz")
    worker, _ = start_process([sys.executable, "worker.py"], env, logs / "worker.log")
    # uvicorn prints "Application startup complete" before it binds the port; this line
    # comes once the socket listens.
    api, listening = start_process(
        [sys.executable, "-m", "api"], env, logs / "api.log", "Uvicorn running on"
    )
    try:
        assert listening.wait(timeout=60), f"the API did not start; see {logs / 'api.log'}"
        yield f"http://127.0.0.1:{port}"
    finally:
        for process in (api, worker):
            process.terminate()
            process.wait(timeout=20)


@pytest.fixture(scope="session")
def api_schema(api_url: str) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_url(f"{api_url}/openapi.json")
    # Data the schema allows may still break a rule the schema cannot express across
    # fields (a reason that does not fit the kind, R8; delivered_at for an undelivered
    # reason, R1; requested_at after our receipt, R1): that is a 422 naming the rule.
    schema.config.checks = ChecksConfig.from_dict(
        {"positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404",
                                                             "409", "422"]}}
    )  # fmt: skip
    return schema


def all_checks() -> list[Any]:
    load_all_checks()
    return [check for check in CHECKS.get_all() if not is_check_class(check)]


_STAFF_PATHS = ("/decision", "/compensation", "/escalation", "/call", "/assignment",
                "/deadline-extension", "/notes")  # fmt: skip


def _headers_for(method: str, path: str) -> dict[str, str]:
    """The role each route is for, so the fuzzing reaches past the 403s."""
    if path.startswith("/scans"):
        return TOKENS[Role.WAREHOUSE]
    if path.endswith("/carrier-response"):
        return TOKENS[Role.CARRIER]
    if path.endswith("/ruling"):
        return TOKENS[Role.ARBITER]
    if path.startswith("/refused-inputs"):
        return TOKENS[Role.MANAGER]
    if (
        path.endswith(_STAFF_PATHS)
        or path.startswith(("/queues", "/unmatched-scans"))
        or (path == "/cases" and method == "GET")
    ):
        return TOKENS[Role.AGENT]
    return TOKENS[Role.SERVICE]


def test_the_api_passes_every_schemathesis_check(api_schema: schemathesis.BaseSchema) -> None:
    checks = all_checks()
    assert {"not_a_server_error", "status_code_conformance", "response_schema_conformance",
            "negative_data_rejection", "ignored_auth"} <= {c.__name__ for c in checks}  # fmt: skip
    results = list(api_schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results) >= 15, "every operation's schema must load"
    answered: list[int] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=10,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,  # the same requests on every CI run; change the seed on purpose
        )
        def conforms(case: schemathesis.Case[Any]) -> None:
            headers = _headers_for(case.method.upper(), case.path)
            response = case.call_and_validate(headers=headers, checks=checks, timeout=30)
            answered.append(response.status_code)

        conforms()
    # Some requests must get through validation and auth, or the run proved little.
    assert len(answered) > 100
    assert any(200 <= code < 300 for code in answered)


async def test_a_chunked_10_mb_body_to_the_running_api_is_413_and_not_kept(
    api_url: str, database_url: str
) -> None:
    """Through uvicorn, as a client would: a chunked body (no Content-Length) is refused
    at the limit; nothing of it is parsed, echoed or kept."""
    marker = f"chunked-{uuid.uuid4().hex}"
    chunk = b"x" * (64 * 1024)

    async def ten_megabytes() -> AsyncIterator[bytes]:
        yield f'{{"order_id": "{marker}", "sku": "'.encode()
        for _ in range(160):
            yield chunk
        yield b'"}'

    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        response = await client.post(
            "/cases",
            content=ten_megabytes(),
            headers={**TOKENS[Role.SERVICE], "Content-Type": "application/json"},
        )  # fmt: skip
    assert response.status_code == 413
    assert len(response.content) < 1_000
    assert response.json()["errors"][0]["field"] == "body"
    connection = await asyncpg.connect(database_url)
    try:
        kept = "SELECT count(*) FROM refused_inputs WHERE strpos(payload, $1) > 0"
        assert await connection.fetchval(kept, marker) == 0
    finally:
        await connection.close()


# Issue 16: shapes the attack run found answering 500 or dropping the connection, as
# properties against the running API: any nesting depth the JSON parser takes, NUL in
# any text or query value, and signed staff tokens whose claims have the wrong types.
_TEXT = st.text(alphabet=st.sampled_from("aZ9-_ \x00é/\\'\"<>"), max_size=12)
_ODD_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=12,
)
_BODY_ROUTES = ["/cases", "/cases/return-O-1-1-r1/evidence", "/cases/return-O-1-1-r1/decision",
                "/scans", "/deliveries", "/claims/claim-damage_claim-O-1-1-r1/carrier-response",
                "/codec/decode"]  # fmt: skip
_REPORT_FILTERS = ["sku", "batch", "category", "channel", "kind", "reason", "from"]


def _nested(depth: int, leaf: Any) -> Any:
    for _ in range(depth):
        leaf = [leaf]
    return leaf


def _answered_in_the_error_shape(response: httpx.Response) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    body = response.json()
    assert set(body) >= {"detail", "errors"}, body


@given(
    route=st.sampled_from(_BODY_ROUTES),
    field=_TEXT,
    depth=st.integers(min_value=0, max_value=950),
    leaf=_ODD_JSON,
)
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True)  # fmt: skip
def test_odd_bodies_never_answer_5xx(
    api_url: str, route: str, field: str, depth: int, leaf: Any
) -> None:
    role = Role.AGENT if route.endswith(("/decision", "/codec/decode")) else Role.SERVICE
    if route == "/scans":
        role = Role.WAREHOUSE
    elif route.endswith("/carrier-response"):
        role = Role.CARRIER
    body = json.dumps({field: _nested(depth, leaf)})
    response = httpx.post(f"{api_url}{route}", content=body, timeout=30,
                          headers={**TOKENS[role], "Content-Type": "application/json"})  # fmt: skip
    _answered_in_the_error_shape(response)


@given(
    path=st.sampled_from(["/reports", "/reports/by_sku.csv", "/reports/page",
                          "/reports/plots/reasons.png"]),
    filters=st.dictionaries(st.sampled_from(_REPORT_FILTERS), _TEXT, min_size=1),
)  # fmt: skip
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True)  # fmt: skip
def test_report_filters_with_nul_never_answer_5xx(
    api_url: str, path: str, filters: dict[str, str]
) -> None:
    filters = {name: value + "\x00" for name, value in filters.items()}
    response = httpx.get(f"{api_url}{path}", params=filters, headers=TOKENS[Role.AGENT],
                         timeout=30)  # fmt: skip
    _answered_in_the_error_shape(response)


def _staff_token_with(**claims: Any) -> str:
    now = datetime.now(UTC)
    return jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "sub": "agent-odd", "roles": ["agent"],
         "exp": now + timedelta(minutes=5)} | claims,
        IDENTITIES.keys.staff_signing_key.read_bytes(), "ES256",
        headers={"kid": IDENTITIES.keys.key_id},
    )  # fmt: skip


@given(roles=_ODD_JSON, expiry=_ODD_JSON)
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True)  # fmt: skip
def test_staff_tokens_with_odd_claims_answer_401_never_5xx(
    api_url: str, roles: Any, expiry: Any
) -> None:
    """A list of role names acts (200) or confers nothing known (403); roles holding
    anything but names, and an expiry that is no number, prove nobody (401)."""

    def answer(token: str) -> int:
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.get(f"{api_url}/cases", headers=headers, timeout=30).status_code

    names_only = not isinstance(roles, list) or all(isinstance(r, str) for r in roles)
    assert answer(_staff_token_with(roles=roles)) in ({200, 403} if names_only else {401})
    if isinstance(expiry, bool) or not isinstance(expiry, int | float):
        assert answer(_staff_token_with(exp=expiry)) == 401
