"""Per-case data keys for crypto-shredding (GDPR art. 17), kept in `data_keys` (008).

Each case's Temporal payloads are sealed with a key of its own, stored wrapped (AES-GCM)
with a master key of the ring. Erasing a case destroys its wrapped key; every payload
sealed with it, in every run and child of the case, can then no longer be read, while the
histories themselves (and the ledger's money records) stay intact:

    UPDATE data_keys SET wrapped_key = NULL, destroyed_at = now() WHERE scope = ANY($1)

followed by `forget(scopes)` in processes that may hold the keys in their cache (others
check them again after CACHE_TTL)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
from cachetools import LRUCache
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from opentelemetry import trace
from pydantic import BaseModel

from infra.outages import DATABASE_DOWN
from infra.security.codec import (
    KEY_BYTES,
    ErasedDataError,
    KeyRing,
    NewDataKey,
    TamperedPayloadError,
    UnknownKeyError,
    seal,
    unseal,
)
from infra.security.codec import scope_of as scope_of

# Bounded: a worker touches only the cases it runs.
CACHE_SIZE = 20_000
# A cached key is checked again after this long: an erasure done by another process takes
# effect here within it (the erasing process itself calls forget()); GDPR gives a month,
# and a shorter time would cost every case a PostgreSQL read that often. While PostgreSQL
# is down the cached key is used all the same, so an outage stops cases no more than it
# did before the codec (scans still reach them).
CACHE_TTL = timedelta(minutes=10)
# A no-op unless the process traces (infra/tracing.py): bench/breakdown.py reads these.
_STAGES = trace.get_tracer("aftersales.data_keys")


@dataclass(frozen=True)
class _Cached:
    # The key's bytes, not its AESGCM: OpenSSL's context costs ~2.3 KiB a case in a worker
    # caching thousands of them, and building it again costs ~1 µs a payload.
    key: bytes
    checked_at: float  # time.monotonic()


class PostgresDataKeys:
    def __init__(
        self,
        pool: asyncpg.Pool,
        ring: KeyRing,
        *,
        cache_size: int = CACHE_SIZE,
        cache_ttl: timedelta = CACHE_TTL,
    ) -> None:
        self._pool = pool
        self._ring = ring
        self._cache: LRUCache[str, _Cached] = LRUCache(maxsize=cache_size)
        self._ttl_s = cache_ttl.total_seconds()

    def _fresh(self, scope: str) -> AESGCM | None:
        cached = self._cache.get(scope)
        if cached is None or time.monotonic() - cached.checked_at >= self._ttl_s:
            return None
        return AESGCM(cached.key)

    def _keep(self, scope: str, key: bytes) -> AESGCM:
        self._cache[scope] = _Cached(key, time.monotonic())
        return AESGCM(key)

    async def for_sealing(self, scope: str) -> AESGCM:
        if fresh := self._fresh(scope):
            return fresh
        if scope in self._cache:
            return await self.for_opening(scope)
        new = self.new_key(scope)
        # Created on first use; a racing process's key wins and both use it.
        with _STAGES.start_as_current_span("data key create"):
            created = await self._pool.fetchval(
                """INSERT INTO data_keys (scope, master_key_id, wrapped_key)
                   VALUES ($1, $2, $3) ON CONFLICT (scope) DO NOTHING RETURNING true""",
                new.scope,
                new.master_key_id,
                new.wrapped,
            )
        if created:
            return self._keep(scope, new.key)
        return await self.for_opening(scope)

    def new_key(self, scope: str) -> NewDataKey:
        data_key = secrets.token_bytes(KEY_BYTES)
        wrapped = seal(self._ring.newest, data_key, scope.encode())
        return NewDataKey(scope, self._ring.newest_id, wrapped, data_key)

    def stored(self, new: NewDataKey) -> None:
        self._keep(new.scope, new.key)

    async def for_opening(self, scope: str) -> AESGCM:
        if fresh := self._fresh(scope):
            return fresh
        try:
            with _STAGES.start_as_current_span("data key fetch"):
                row = await self._pool.fetchrow(
                    "SELECT master_key_id, wrapped_key FROM data_keys WHERE scope = $1", scope
                )
        except DATABASE_DOWN:
            if stale := self._cache.get(scope):
                return AESGCM(stale.key)  # checked again once PostgreSQL answers
            raise
        if row is None:
            raise UnknownKeyError(
                f"no data key for {scope} in data_keys: was it sealed by a process whose "
                "DATABASE_URL names another database?"
            )
        if row["wrapped_key"] is None:
            self._cache.pop(scope, None)
            raise ErasedDataError(f"the payloads of {scope} were erased: its data key is destroyed")
        try:
            data_key = unseal(
                self._ring.key(row["master_key_id"]), row["wrapped_key"], scope.encode()
            )
        except InvalidTag:
            raise TamperedPayloadError(f"the data key of {scope} does not authenticate") from None
        return self._keep(scope, data_key)

    def forget(self, scopes: Iterable[str]) -> None:
        """Drop cached keys after erasing them, so this process stops using them at once."""
        for scope in scopes:
            self._cache.pop(scope, None)


class RewrapReport(BaseModel):
    rewrapped: int
    # Wrapped with a master key the ring no longer has: add it back to rewrap them.
    unknown_master: int


async def rewrap(pool: asyncpg.Pool, ring: KeyRing) -> RewrapReport:
    """Wrap every live data key with the ring's newest master key, so an older master key
    (retired or suspected) can leave the ring without making a case unreadable. Each row is
    rewritten only if it still holds what was read (a concurrent erasure wins). Run again,
    it rewraps none."""
    rewrapped = unknown = 0
    rows = await pool.fetch(
        """SELECT scope, master_key_id, wrapped_key FROM data_keys
           WHERE wrapped_key IS NOT NULL AND master_key_id <> $1""",
        ring.newest_id,
    )
    for row in rows:
        scope = row["scope"]
        if row["master_key_id"] not in ring.ids:
            unknown += 1
            continue
        data_key = unseal(ring.key(row["master_key_id"]), row["wrapped_key"], scope.encode())
        updated = await pool.fetchval(
            """UPDATE data_keys SET master_key_id = $2, wrapped_key = $3
               WHERE scope = $1 AND wrapped_key = $4 RETURNING true""",
            scope,
            ring.newest_id,
            seal(ring.newest, data_key, scope.encode()),
            row["wrapped_key"],
        )
        rewrapped += bool(updated)
    return RewrapReport(rewrapped=rewrapped, unknown_master=unknown)
