"""A budget per client for refused input: every refused write is kept for a person
(refused_inputs, docs/privacy.md), so without a bound one staff member's script or one
machine client could fill that table (the attack run's fuzzing left ~10 000 rows).

Each proven client (the actor its credential proves) may have `per_minute` inputs kept as
refused, refilled evenly over the minute. Once it has none left, its writes answer 429 with
Retry-After before their body is read, until the budget refills; its reads, and every
other client, go on as before. Kept in the process: each API process counts its own."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable

from fastapi import status
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import ApiErrorItem, error_response
from infra.security.identity import Principal
from infra.settings import DEFAULT_REFUSALS_PER_MINUTE

# Writes: what may be refused and kept. Reads keep nothing.
_READS = frozenset({"GET", "HEAD", "OPTIONS"})
# Clients whose budget has refilled are forgotten once this many are tracked, so the
# table stays small whatever the number of staff subjects.
_TRACKED_CLIENTS = 10_000


class RefusalBudget:
    def __init__(
        self,
        per_minute: int = DEFAULT_REFUSALS_PER_MINUTE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_minute = per_minute
        self._clock = clock
        # client -> (refusals left, when counted)
        self._left: dict[str, tuple[float, float]] = {}
        # Writes answered 429 per client: for the metrics endpoint, once there is one.
        self.over_budget: Counter[str] = Counter()

    def wait_s(self, client: str) -> float:
        """0 while `client` may have an input refused and kept; else the seconds until it
        may again."""
        return max(0.0, (1 - self._level(client)) * 60 / self.per_minute)

    def spend(self, client: str) -> None:
        """One of `client`'s inputs was refused and kept."""
        if len(self._left) >= _TRACKED_CLIENTS:
            self._forget_refilled()
        self._left[client] = (self._level(client) - 1, self._clock())

    def _level(self, client: str) -> float:
        now = self._clock()
        left, counted = self._left.get(client, (float(self.per_minute), now))
        return min(float(self.per_minute), left + (now - counted) * self.per_minute / 60)

    def _forget_refilled(self) -> None:
        full = [c for c in self._left if self._level(c) >= self.per_minute]
        for client in full:
            del self._left[client]


class RefusalBudgetGuard:
    """Plain ASGI, after authentication: a write from a client with no budget left is 429
    before its body is read, so nothing of it is parsed or kept."""

    def __init__(self, app: ASGIApp, budget: RefusalBudget) -> None:
        self._app = app
        self._budget = budget

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal: Principal | None = scope.get("state", {}).get("principal")
        if scope["type"] == "http" and scope["method"] not in _READS and principal is not None:
            wait = self._budget.wait_s(principal.actor)
            if wait > 0:
                self._budget.over_budget[principal.actor] += 1
                retry_after = math.ceil(wait)
                message = (
                    f"more than {self._budget.per_minute} refused inputs in a minute from "
                    f"this client; send writes again in {retry_after} s"
                )
                answer = error_response(
                    status.HTTP_429_TOO_MANY_REQUESTS,
                    [ApiErrorItem(field=None, rule=None, message=message)],
                    headers={"Retry-After": str(retry_after)},
                )
                await answer(scope, receive, send)
                return
        await self._app(scope, receive, send)
