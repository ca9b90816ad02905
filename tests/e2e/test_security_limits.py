"""Issue 16, item 1: no caller exhausts the API with request heads. The API runs as its
own process (`python -m api`, as production runs it) and its memory is read from /proc
while four connections each try to send a 100 MB header. Before: each header was
buffered whole (the API grew by hundreds of MB, other callers waited seconds, each was
answered 401 after minutes); now each is answered 431 after 32 KiB."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import jwt
import pytest
from temporalio.testing import WorkflowEnvironment

from domain.case import Role
from tests.identities import AUDIENCE, IDENTITIES, ISSUER
from tests.processes import free_port, start_process

MEGABYTE = 1024 * 1024
ATTACKERS = 4
HEADER_BYTES = 100 * MEGABYTE
# How long a refused head may take to be answered, and how much the API may grow while
# four are refused at once (its own allocator noise is a few MB).
ANSWER_WITHIN_S = 5.0
GROWTH_BOUND_BYTES = 20 * MEGABYTE


@dataclass(frozen=True)
class ApiProcess:
    url: str
    port: int
    pid: int

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS in /proc status")


@pytest.fixture(scope="module")
def api_process(
    dev_env: WorkflowEnvironment,
    database_url: str,
    pool: asyncpg.Pool,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ApiProcess]:
    """The API alone (no worker: heads and tokens are refused before any case is read),
    on the database `pool` has migrated."""
    port = free_port()
    env = os.environ | {
        "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "DATABASE_URL": database_url,
        "AFTERSALES_TASK_QUEUE": "aftersales-limits",
        "AFTERSALES_API_PORT": str(port),
        **IDENTITIES.environment(),
    }
    log = tmp_path_factory.mktemp("limits") / "api.log"
    api, listening = start_process([sys.executable, "-m", "api"], env, log, "Uvicorn running on")
    try:
        assert listening.wait(timeout=60), f"the API did not start; see {log}"
        yield ApiProcess(url=f"http://127.0.0.1:{port}", port=port, pid=api.pid)
    finally:
        api.terminate()
        api.wait(timeout=20)


@dataclass(frozen=True)
class Answer:
    head: bytes
    after_s: float


async def send_huge_header(port: int, size: int) -> Answer:
    """A request whose one header is `size` bytes, sent as fast as the API reads it;
    the API's answer (its status line and headers) as soon as it comes."""
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = loop.time()
    chunk = b"a" * MEGABYTE

    async def send() -> None:
        writer.write(b"GET /cases HTTP/1.1\r\nHost: api\r\nX-Junk: ")
        with_error = (ConnectionError, OSError)
        try:
            for _ in range(size // len(chunk)):
                writer.write(chunk)
                await writer.drain()
            writer.write(b"\r\n\r\n")
            await writer.drain()
        except with_error:
            return  # the API closed the connection: what it answered is read below

    sender = asyncio.create_task(send())
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=60)
        return Answer(head=head, after_s=loop.time() - started)
    finally:
        sender.cancel()
        writer.close()


async def test_four_100_mb_headers_are_431_at_once_and_the_api_stays_flat(
    api_process: ApiProcess,
) -> None:
    baseline = api_process.rss_bytes()
    peak = baseline
    attacking = True

    async def sample_memory() -> None:
        nonlocal peak
        while attacking:
            peak = max(peak, api_process.rss_bytes())
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample_memory())
    attacks = [
        asyncio.create_task(send_huge_header(api_process.port, HEADER_BYTES))
        for _ in range(ATTACKERS)
    ]
    # Another caller meanwhile is answered as usual (401: it sends no token).
    async with httpx.AsyncClient(base_url=api_process.url, timeout=30) as client:
        loop = asyncio.get_running_loop()
        asked = loop.time()
        bystander = await client.get("/cases")
        bystander_s = loop.time() - asked
    answers = await asyncio.gather(*attacks)
    attacking = False
    await sampler
    for answer in answers:
        assert answer.head.startswith(b"HTTP/1.1 431 "), answer.head[:200]
        assert answer.after_s < ANSWER_WITHIN_S, answer.after_s
    assert bystander.status_code == 401
    assert bystander_s < 2.0, bystander_s
    assert peak - baseline < GROWTH_BOUND_BYTES, (
        f"the API grew from {baseline / MEGABYTE:.0f} MB to {peak / MEGABYTE:.0f} MB"
    )


async def test_a_refused_head_is_answered_in_the_error_shape(api_process: ApiProcess) -> None:
    headers = {"X-Junk": "j" * (40 * 1024)}
    async with httpx.AsyncClient(base_url=api_process.url, timeout=30) as client:
        response = await client.get("/cases", headers=headers)
    assert response.status_code == 431
    assert response.json()["errors"] == [
        {
            "field": "headers",
            "rule": None,
            "message": "the request line and headers are larger than 32768 bytes",
        }
    ]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_a_validly_signed_10_mb_token_is_refused_before_it_is_read(
    api_process: ApiProcess,
) -> None:
    """Before: a validly signed 10.6 MB token was accepted. Now the head limit refuses
    it (431) and a signed token past 8 KiB that fits the head is 401 unread."""
    now = datetime.now(UTC)
    key = IDENTITIES.keys.staff_signing_key.read_bytes()

    def signed(padding: int) -> str:
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "agent-ann", "roles": ["agent"],
                  "exp": now + timedelta(minutes=5), "padding": "p" * padding}  # fmt: skip
        return jwt.encode(claims, key, "ES256", headers={"kid": IDENTITIES.keys.key_id})

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async with httpx.AsyncClient(base_url=api_process.url, timeout=60) as client:
        huge = await client.get("/cases", headers=bearer(signed(8 * MEGABYTE)))
        long = await client.get("/cases", headers=bearer(signed(9_000)))
        usual = await client.get("/cases", headers=IDENTITIES.bearer(Role.AGENT, "agent-ann"))
    assert huge.status_code == 431
    assert long.status_code == 401
    assert "longer than 8192 characters" in long.json()["detail"]
    # The bound leaves room for real tokens: the usual one is no 401.
    assert usual.status_code != 401


async def test_bodies_and_kept_alive_connections_are_served_as_before(
    api_process: ApiProcess,
) -> None:
    """Only the head is counted: a body that arrives with it in one read (200 KiB, under
    the body limit) is not taken for head, and each request on a kept-alive connection
    is counted afresh."""
    body = b'{"order_id": "' + b"o" * (200 * 1024) + b'"}'
    async with httpx.AsyncClient(base_url=api_process.url, timeout=30) as client:
        posted = await client.post("/cases", content=body, headers={
            **IDENTITIES.bearer(Role.SERVICE, "shop-limits"), "Content-Type": "application/json",
            "X-Padding": "p" * (20 * 1024)})  # fmt: skip
        again = [await client.get("/cases", headers={"X-Padding": "p" * (20 * 1024)})
                 for _ in range(10)]  # fmt: skip
    assert posted.status_code == 422, posted.text[:300]
    assert [r.status_code for r in again] == [401] * 10
