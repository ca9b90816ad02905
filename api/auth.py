"""Bearer tokens per role, from configuration. Who acted, and as what, goes into every
case's ledger (R23), so operators name themselves in `X-Actor`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from domain.case import BusinessKey, Role

_bearer = HTTPBearer(auto_error=False)


@dataclass(frozen=True)
class Caller:
    role: Role
    actor: str


def parse_tokens(spec: str) -> dict[str, Role]:
    """`role=token,role=token` (AFTERSALES_API_TOKENS) to a token → role map."""
    tokens: dict[str, Role] = {}
    for pair in filter(None, (p.strip() for p in spec.split(","))):
        role, sep, token = pair.partition("=")
        if not sep or not token:
            raise ValueError(f"AFTERSALES_API_TOKENS: {pair!r} is not role=token")
        # Scanners act as the warehouse in the ledger.
        tokens[token] = Role.WAREHOUSE if role == "scanner" else Role(role)
    return tokens


def requires(tokens: Mapping[str, Role], *roles: Role) -> Callable[..., Awaitable[Caller]]:
    """A dependency: 401 without a known token, 403 for a role not in `roles`."""

    # async: FastAPI would run a plain function in a thread for every request.
    async def caller(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        x_actor: Annotated[BusinessKey | None, Header()] = None,
    ) -> Caller:
        role = tokens.get(credentials.credentials) if credentials else None
        if role is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "a valid bearer token is required",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {role.value} may not do this "
                                f"(allowed: {allowed})")  # fmt: skip
        return Caller(role=role, actor=x_actor or role.value)

    return caller
