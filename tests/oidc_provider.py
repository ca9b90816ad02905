"""A small OpenID Connect provider standing in for the company's identity provider (an
outside system): discovery, authorize (signs in whoever the test names, at once), token
(authorization code with PKCE S256 checked), and the JWKS; ID tokens signed with a test
key of its own."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI, Form, HTTPException
from fastapi.responses import RedirectResponse

from tests.conftest import eventually
from tests.processes import free_port

KEY_ID = "test-idp-1"


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    nonce: str
    challenge: str


@dataclass
class StandInProvider:
    """Who the next sign-in is (`person`, `roles`), and what it saw."""

    url: str
    person: str = "olga"
    roles: list[str] = field(default_factory=lambda: ["supervisor"])
    # A provider gone wrong, or an attacker's: the ID token carries another nonce.
    wrong_nonce: bool = False
    verified_challenges: list[str] = field(default_factory=list)
    grants: dict[str, Grant] = field(default_factory=dict)


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def provider_app(provider: StandInProvider) -> FastAPI:
    key = ec.generate_private_key(ec.SECP256R1())
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    app = FastAPI()

    @app.get("/.well-known/openid-configuration")
    async def discovery() -> dict[str, Any]:
        return {
            "issuer": provider.url,
            "authorization_endpoint": f"{provider.url}/authorize",
            "token_endpoint": f"{provider.url}/token",
            "jwks_uri": f"{provider.url}/jwks",
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": ["ES256"],
        }

    @app.get("/authorize")
    async def authorize(
        response_type: str, client_id: str, redirect_uri: str, state: str, nonce: str,
        code_challenge: str, code_challenge_method: str, scope: str,
    ) -> RedirectResponse:  # fmt: skip
        if response_type != "code" or code_challenge_method != "S256" or "openid" not in scope:
            raise HTTPException(400, "an authorization code request with PKCE S256 only")
        code = secrets.token_urlsafe(16)
        provider.grants[code] = Grant(client_id, redirect_uri, nonce, code_challenge)
        return RedirectResponse(f"{redirect_uri}?{urlencode({'code': code, 'state': state})}")

    @app.post("/token")
    async def token(
        grant_type: Annotated[str, Form()],
        code: Annotated[str, Form()],
        redirect_uri: Annotated[str, Form()],
        code_verifier: Annotated[str, Form()],
        client_id: Annotated[str, Form()],
    ) -> dict[str, Any]:
        grant = provider.grants.pop(code, None)  # a code is used once
        if grant is None or grant_type != "authorization_code":
            raise HTTPException(400, "invalid_grant")
        if grant.redirect_uri != redirect_uri or grant.client_id != client_id:
            raise HTTPException(400, "invalid_grant: another client or redirect")
        if _s256(code_verifier) != grant.challenge:
            raise HTTPException(400, "invalid_grant: the PKCE verifier does not match")
        provider.verified_challenges.append(grant.challenge)
        now = datetime.now(UTC)
        claims = {
            "iss": provider.url, "aud": client_id, "sub": provider.person,
            "roles": provider.roles, "iat": now, "exp": now + timedelta(minutes=5),
            "nonce": "another" if provider.wrong_nonce else grant.nonce,
        }  # fmt: skip
        id_token = jwt.encode(claims, key, algorithm="ES256", headers={"kid": KEY_ID})
        return {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer",
                "expires_in": 300, "id_token": id_token}  # fmt: skip

    @app.get("/jwks")
    async def jwks() -> dict[str, Any]:
        return {"keys": [public | {"kid": KEY_ID, "use": "sig", "alg": "ES256"}]}

    return app


@asynccontextmanager
async def oidc_provider() -> AsyncIterator[StandInProvider]:
    port = free_port()
    provider = StandInProvider(url=f"http://127.0.0.1:{port}")
    config = uvicorn.Config(provider_app(provider), host="127.0.0.1", port=port,
                            log_level="warning")  # fmt: skip
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())

    async def listening() -> bool:
        return bool(server.started)

    assert await eventually(listening, bool)
    try:
        yield provider
    finally:
        server.should_exit = True
        await serving
