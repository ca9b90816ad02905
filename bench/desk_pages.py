"""The desk's pages at a real team's size (issue 17): the same 100,000 open cases (and
200,000 closed) as bench/desk_queues.py generates, and 20 operators at once, each signed
in to the desk (its development sign-in: a session row, a cookie) and going through the
desk's queue pages (HTML, with every queue's count in the navigation), the next page of
one, a search, and a case's page (view, timeline, notes, messages, photos, counts),
beside the API's plain `GET /cases/{id}` in the same run. Latency is the server's own
(`Server-Timing`), p50/p95/p99 per route.

`python -m bench.desk_pages` prints JSON and writes bench/desk_pages_results.json."""

from __future__ import annotations

import asyncio
import json
import random
import re
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.desk_queues import OPEN_CASES, OPERATORS, THINK_S, _percentiles, generate
from bench.stack import Stack, running_stack
from desk.gate import SESSION_COOKIE
from domain.case import Role
from domain.queues import Queue
from tests.identities import IDENTITIES

ROUNDS_WORKING, ROUNDS_SATURATED = 4, 6
OUT = Path(__file__).parent / "desk_pages_results.json"
_FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')
_NEXT_PAGE = re.compile(r'<a href="([^"]+)">Next page</a>')


class PageTimings:
    def __init__(self) -> None:
        self.server: dict[str, list[float]] = defaultdict(list)

    async def get(self, stack: Stack, route: str, url: str, headers: dict[str, str]) -> str:
        async with stack.api.get(url, headers=headers, allow_redirects=False) as response:
            body = await response.text()
            if response.status != 200:
                raise RuntimeError(f"{url}: {response.status} {body[:300]}")
            timing = response.headers["Server-Timing"]
        self.server[route].append(float(timing.split("dur=")[1]))
        return body

    def summary(self) -> dict[str, dict[str, float]]:
        return {route: _percentiles(taken) for route, taken in sorted(self.server.items())}


async def signed_in(stack: Stack, person: str, role: Role) -> dict[str, str]:
    """The Cookie header of a desk session, opened through the development sign-in."""
    async with stack.api.get("/desk/sign-in") as form:
        page = await form.text()
        pre_session = form.cookies["aftersales_desk_sign_in"].value
    token = _FORM_TOKEN.search(page)
    assert token is not None
    async with stack.api.post(
        "/desk/sign-in",
        data={"form_token": token.group(1), "person": person, "role": role.value},
        headers={"Cookie": f"aftersales_desk_sign_in={pre_session}"},
        allow_redirects=False,
    ) as answer:
        if answer.status != 303:
            raise RuntimeError(f"sign-in: {answer.status} {await answer.text()}")
        return {"Cookie": f"{SESSION_COOKIE}={answer.cookies[SESSION_COOKIE].value}"}


async def operator(
    stack: Stack, timings: PageTimings, n: int, *, rounds: int, think_s: float
) -> None:
    rng = random.Random(n)
    role = Role.SUPERVISOR if n % 4 == 0 else Role.AGENT
    person = f"agent-{n}"
    cookie = await signed_in(stack, person, role)
    bearer = IDENTITIES.bearer(role, person)

    async def get(route: str, url: str, headers: dict[str, str]) -> str:
        body = await timings.get(stack, route, url, headers)
        if think_s:
            await asyncio.sleep(think_s * rng.uniform(0.5, 1.5))
        return body

    for _ in range(rounds):
        for queue in Queue:
            page = await get(f"desk queue {queue.value}", f"/desk/queues/{queue.value}", cookie)
            following = _NEXT_PAGE.search(page)
            if queue is Queue.UNASSIGNED and following:
                await get("desk queue (page 2)", following.group(1).replace("&amp;", "&"),
                          cookie)  # fmt: skip
        order_id = f"D{rng.randint(1, OPEN_CASES)}"
        case_id = f"return-{order_id}-1-r1"
        await get("desk queue search", f"/desk/queues/unassigned?q={order_id}", cookie)
        await get("desk case page", f"/desk/cases/{case_id}", cookie)
        await get("GET /cases/{id} (API)", f"/cases/{case_id}", bearer)


async def team(stack: Stack, *, rounds: int, think_s: float) -> dict[str, Any]:
    timings = PageTimings()
    started = time.perf_counter()
    await asyncio.gather(
        *(operator(stack, timings, n, rounds=rounds, think_s=think_s) for n in range(OPERATORS))
    )
    elapsed = time.perf_counter() - started
    requests = sum(len(v) for v in timings.server.values())
    return {"think_s": think_s, "requests": requests,
            "requests_per_s": round(requests / elapsed, 1),
            "server_side_latency": timings.summary()}  # fmt: skip


async def main() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        async with running_stack(Path(folder)) as stack:
            generated_s = await generate(stack.pool)
            await operator(stack, PageTimings(), 999, rounds=1, think_s=0)  # warm-up
            working = await team(stack, rounds=ROUNDS_WORKING, think_s=THINK_S)
            saturated = await team(stack, rounds=ROUNDS_SATURATED, think_s=0)
    results = {"open_cases": OPEN_CASES, "operators": OPERATORS,
               "generated_s": round(generated_s, 1), "working": working,
               "saturated": saturated}  # fmt: skip
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main()), indent=2))
