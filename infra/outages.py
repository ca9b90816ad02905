"""Which of our own services an error says cannot be reached right now, so a way in can
answer "try again shortly" (HTTP 503) instead of failing as if the request were wrong."""

from __future__ import annotations

import asyncpg
from temporalio.service import RPCError, RPCStatusCode

# The Temporal client has already retried these for ~10 s before they reach us.
_TEMPORAL_DOWN = frozenset({RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED})
# A refused or cut connection (OSError, ConnectionDoesNotExistError) or a server that is
# starting or stopping (CannotConnectNowError).
DATABASE_DOWN = (OSError, asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError)


def unreachable_service(error: BaseException) -> str | None:
    """ "Temporal" or "PostgreSQL" when `error` means that service is down, else None."""
    if isinstance(error, RPCError) and error.status in _TEMPORAL_DOWN:
        return "Temporal"
    if isinstance(error, DATABASE_DOWN):
        return "PostgreSQL"
    return None
