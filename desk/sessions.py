"""Signed-in browsers, kept in PostgreSQL (`desk_sessions`): a random id in an HttpOnly
cookie, its sha256 and the person's proven identity in that table, with the CSRF token
every desk form carries (a synchronizer token, tied to the session)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from domain.case import Role
from infra.security.identity import Principal

SESSION_LENGTH = timedelta(hours=8)
SIGN_IN_LENGTH = timedelta(minutes=10)


@dataclass(frozen=True)
class Session:
    principal: Principal
    csrf_token: str

    def admits(self, csrf_token: str) -> bool:
        """Whether a form's token is this session's (compared in constant time)."""
        return hmac.compare_digest(self.csrf_token.encode(), csrf_token.encode())


@dataclass(frozen=True)
class SignIn:
    """An OIDC sign-in under way: what its callback must match."""

    nonce: str
    code_verifier: str
    return_to: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class SessionStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def open(self, principal: Principal) -> str:
        """A new session for `principal`; returns the cookie's value (shown once)."""
        session_id = secrets.token_urlsafe(32)
        await self._pool.execute(
            """INSERT INTO desk_sessions (id_sha256, actor, roles, csrf_token, expires_at)
               VALUES ($1, $2, $3, $4, now() + $5)""",
            _digest(session_id),
            principal.actor,
            sorted(role.value for role in principal.roles),
            secrets.token_urlsafe(32),
            SESSION_LENGTH,
        )
        return session_id

    async def find(self, session_id: str) -> Session | None:
        row = await self._pool.fetchrow(
            """SELECT actor, roles, csrf_token FROM desk_sessions
               WHERE id_sha256 = $1 AND expires_at > now()""",
            _digest(session_id),
        )
        if row is None:
            return None
        roles = frozenset(Role(name) for name in row["roles"])
        return Session(Principal(actor=row["actor"], roles=roles), row["csrf_token"])

    async def close(self, session_id: str) -> None:
        """Signing out: the session ends here, whatever copy of the cookie is left."""
        await self._pool.execute(
            "DELETE FROM desk_sessions WHERE id_sha256 = $1 OR expires_at < now()",
            _digest(session_id),
        )

    async def begin_sign_in(self, state: str, sign_in: SignIn) -> None:
        await self._pool.execute(
            """INSERT INTO desk_sign_ins (state_sha256, nonce, code_verifier, return_to,
                                          expires_at)
               VALUES ($1, $2, $3, $4, now() + $5)""",
            _digest(state),
            sign_in.nonce,
            sign_in.code_verifier,
            sign_in.return_to,
            SIGN_IN_LENGTH,
        )

    async def finish_sign_in(self, state: str) -> SignIn | None:
        """The sign-in `state` began, once: a replayed callback finds nothing."""
        row = await self._pool.fetchrow(
            """DELETE FROM desk_sign_ins WHERE state_sha256 = $1
               RETURNING nonce, code_verifier, return_to, expires_at > now() AS current""",
            _digest(state),
        )
        if row is None or not row["current"]:
            return None
        return SignIn(row["nonce"], row["code_verifier"], row["return_to"])
