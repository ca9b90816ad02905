"""Signing in with the configured OpenID Connect provider: the authorization code flow
with PKCE (S256), state and nonce (authlib's OAuth 2 client), and the ID token verified
against the provider's JWKS with the same JOSE library and algorithms as staff tokens
(PyJWT, infra/security/identity.py). Its claims map to a person and staff roles exactly as a
staff token's do (`staff_principal`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx2
import jwt
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client

from desk.sessions import SignIn
from infra.security.identity import (
    CLOCK_SKEW,
    TOKEN_ALGORITHMS,
    Principal,
    Unauthenticated,
    is_loopback,
    staff_principal,
)

DISCOVERY_PATH = "/.well-known/openid-configuration"


@contextmanager
def _provider_trouble() -> Iterator[None]:
    """The provider refusing the exchange (a code used twice, a wrong verifier) or not
    answering is no sign-in: said as such, never a 500."""
    try:
        yield
    except (OAuthError, httpx2.HTTPError, ValueError) as error:
        raise Unauthenticated(f"the identity provider did not sign you in: {error}") from error


@dataclass(frozen=True)
class Redirect:
    """Where to send the browser, and the sign-in its callback must finish."""

    url: str
    state: str
    sign_in: SignIn


class OidcProvider:
    def __init__(self, issuer: str, client_id: str, client_secret: str | None) -> None:
        host = urlsplit(issuer).hostname or ""
        if urlsplit(issuer).scheme != "https" and not is_loopback(host):
            raise ValueError(f"AFTERSALES_OIDC_ISSUER: {issuer} must be https (or on loopback)")
        self.issuer = issuer.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret or None
        self._metadata: dict[str, Any] | None = None

    def _client(self, redirect_uri: str) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self._client_id,
            client_secret=self._client_secret,
            # A public client (no secret) proves itself with PKCE alone.
            token_endpoint_auth_method="client_secret_basic" if self._client_secret else "none",
            scope="openid profile",
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            timeout=10,
        )

    async def _discovered(self) -> dict[str, Any]:
        """The provider's discovery document, fetched once per process."""
        with _provider_trouble():
            return await self._discovery()

    async def _discovery(self) -> dict[str, Any]:
        if self._metadata is None:
            async with self._client("") as client:
                answer = await client.request(
                    "GET", f"{self.issuer}{DISCOVERY_PATH}", withhold_token=True
                )
                answer.raise_for_status()
                metadata: dict[str, Any] = answer.json()
            if metadata.get("issuer", "").rstrip("/") != self.issuer:
                raise Unauthenticated("the provider's discovery document names another issuer")
            self._metadata = metadata
        return self._metadata

    async def redirect(self, redirect_uri: str, return_to: str) -> Redirect:
        metadata = await self._discovered()
        state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
        async with self._client(redirect_uri) as client:
            url, _ = client.create_authorization_url(
                metadata["authorization_endpoint"], state=state, code_verifier=verifier,
                nonce=nonce,
            )  # fmt: skip
        return Redirect(url=url, state=state, sign_in=SignIn(nonce, verifier, return_to))

    async def principal(self, code: str, redirect_uri: str, sign_in: SignIn) -> Principal:
        """The person the provider signed in: the code exchanged (with the PKCE verifier),
        the ID token's signature, issuer, audience, expiry and nonce checked."""
        metadata = await self._discovered()
        with _provider_trouble():
            async with self._client(redirect_uri) as client:
                token = await client.fetch_token(
                    metadata["token_endpoint"], code=code, code_verifier=sign_in.code_verifier
                )
                keys = await client.request("GET", metadata["jwks_uri"], withhold_token=True)
                keys_document = keys.raise_for_status().json()
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise Unauthenticated("the provider answered without an ID token")
        try:
            key_id = str(jwt.get_unverified_header(id_token).get("kid"))
            key = jwt.PyJWKSet.from_dict(keys_document)[key_id]
            claims = jwt.decode(
                id_token, key, algorithms=TOKEN_ALGORITHMS, audience=self._client_id,
                issuer=self.issuer, leeway=CLOCK_SKEW,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "nonce"]},
            )  # fmt: skip
        except (jwt.PyJWTError, KeyError) as error:
            raise Unauthenticated(f"the ID token is not valid: {error}") from error
        if claims["nonce"] != sign_in.nonce:
            raise Unauthenticated("the ID token's nonce is not this sign-in's")
        return staff_principal(claims)
