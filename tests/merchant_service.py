"""A merchant's own services as docs/outside/*.openapi.yaml define them, on loopback for
the adapter tests: it checks every request's signature and replay window (401
otherwise), answers the same `Idempotency-Key` once (a repeat gets the first answer and
books nothing), and refuses what a test lists (422 with the contract's body)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from infra.outside.signing import IDEMPOTENCY_HEADER, BadSignature, verify

SECRET = "s" * 40
# Every call of docs/outside/*.openapi.yaml, as (method, path template).
ROUTES = [
    ("POST", "/refunds"), ("POST", "/charges"), ("GET", "/payments/{key}"),
    ("POST", "/messages"),
    ("POST", "/shipments"), ("GET", "/stock/{sku}"),
    ("POST", "/orders/{order}/lines/{line}/cancellation"),
    ("POST", "/claims"), ("POST", "/claims/{reference}/chase"), ("POST", "/intercepts"),
]  # fmt: skip


@dataclass
class MerchantService:
    secret: bytes = SECRET.encode()
    # What it refuses.
    declined_cases: set[str] = field(default_factory=set)
    no_stock: set[str] = field(default_factory=set)
    shipped_orders: set[str] = field(default_factory=set)
    rejecting_carriers: set[str] = field(default_factory=set)
    refusing_intercepts: set[str] = field(default_factory=set)
    unreachable_customers: set[str] = field(default_factory=set)
    # Statuses (and bodies) to answer next, before anything else, one per request.
    forced: list[tuple[int, str]] = field(default_factory=list)
    delay_s: float = 0.0
    # What it saw and did.
    answered: dict[str, dict[str, Any]] = field(default_factory=dict)  # by idempotency key
    booked: Counter[str] = field(default_factory=Counter)  # by path kind: refunds, shipments...
    bad_signatures: int = 0
    requests: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    url: str = ""

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            verify(
                self.secret, request.method, request.raw_path, request.headers, body,
                datetime.now(UTC),
            )  # fmt: skip
        except BadSignature as error:
            self.bad_signatures += 1
            return web.json_response({"error": str(error)}, status=401)
        await asyncio.sleep(self.delay_s)
        if self.forced:
            status, text = self.forced.pop(0)
            return web.Response(status=status, text=text, content_type="application/json")
        payload: dict[str, Any] = json.loads(body) if body else {}
        self.requests.append((request.method, request.path, payload))
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if key is not None and key in self.answered:
            return web.json_response(self.answered[key])
        refusal = self._refusal(request, payload)
        if refusal is not None:
            # A refusal binds nothing to the key: the same key may be tried again.
            return web.json_response({"outcome": "refused", "reason": refusal}, status=422)
        answer = self._answer(request, payload, key)
        if key is not None:
            self.answered[key] = answer
            self.booked[request.path.split("/")[1]] += 1
        return web.json_response(answer)

    def _refusal(self, request: web.Request, payload: dict[str, Any]) -> str | None:
        path = request.path
        if path in ("/refunds", "/charges") and payload["case_id"] in self.declined_cases:
            return "card declined: insufficient funds"
        if path == "/shipments" and payload["sku"] in self.no_stock:
            return f"no stock of {payload['sku']}"
        if path.endswith("/cancellation") and request.match_info["order"] in self.shipped_orders:
            return "already shipped"
        if path == "/claims" and payload["carrier"] in self.rejecting_carriers:
            return "claim rejected: not liable"
        if path == "/intercepts" and payload["carrier"] in self.refusing_intercepts:
            return "out for delivery"
        if path == "/messages" and payload["customer_id"] in self.unreachable_customers:
            return "no reachable address"
        return None

    def _answer(self, request: web.Request, payload: dict[str, Any], key: str | None) -> Any:
        if request.path.startswith("/stock/"):
            return {"in_stock": request.match_info["sku"] not in self.no_stock}
        if request.path.endswith("/cancellation"):
            return {"cancelled": True}
        return {"reference": f"merchant-{request.path.split('/')[1]}-{key}"}

    async def _find(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            verify(
                self.secret, request.method, request.raw_path, request.headers, body,
                datetime.now(UTC),
            )  # fmt: skip
        except BadSignature:
            self.bad_signatures += 1
            return web.json_response({}, status=401)
        answer = self.answered.get(request.match_info["key"])
        if answer is None:
            return web.json_response({"error": "no payment under this key"}, status=404)
        return web.json_response(answer)


@asynccontextmanager
async def merchant_service(
    service: MerchantService | None = None,
) -> AsyncIterator[MerchantService]:
    service = service or MerchantService()
    app = web.Application()
    app.add_routes(
        [
            web.route(method, path, service._find if path == "/payments/{key}" else service._handle)
            for method, path in ROUTES
        ]
    )
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)  # a port the system picks: no race for it
    await site.start()
    service.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield service
    finally:
        await runner.cleanup()
