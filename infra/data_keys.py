"""Per-case data keys for crypto-shredding (GDPR art. 17), kept in `data_keys` (008).

Each case's Temporal payloads are sealed with a key of its own, stored wrapped (AES-GCM)
with a master key of the ring. Erasing a case destroys its wrapped key; every payload
sealed with it, in every run and child of the case, can then no longer be read, while the
histories themselves (and the ledger's money records) stay intact:

    UPDATE data_keys SET wrapped_key = NULL, destroyed_at = now() WHERE scope = ANY($1)

followed by `forget(scopes)` in processes that may hold the keys in their cache (others
drop them after CACHE_TTL)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import timedelta

import asyncpg
from cachetools import TTLCache
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from infra.codec import KEY_BYTES, ErasedDataError, KeyRing, TamperedPayloadError, seal, unseal
from infra.codec import scope_of as scope_of

# Bounded: a worker touches only the cases it runs; expiring: an erasure done by another
# process takes effect here within this time.
CACHE_SIZE = 20_000
CACHE_TTL = timedelta(minutes=1)


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
        self._cache: TTLCache[str, AESGCM] = TTLCache(
            maxsize=cache_size, ttl=cache_ttl.total_seconds()
        )

    async def for_sealing(self, scope: str) -> AESGCM:
        cached = self._cache.get(scope)
        if cached is not None:
            return cached
        data_key = secrets.token_bytes(KEY_BYTES)
        # Created on first use; a racing process's key wins and both use it.
        created = await self._pool.fetchval(
            """INSERT INTO data_keys (scope, master_key_id, wrapped_key) VALUES ($1, $2, $3)
               ON CONFLICT (scope) DO NOTHING RETURNING true""",
            scope,
            self._ring.newest_id,
            seal(self._ring.newest, data_key, scope.encode()),
        )
        if created:
            key = AESGCM(data_key)
            self._cache[scope] = key
            return key
        return await self.for_opening(scope)

    async def for_opening(self, scope: str) -> AESGCM:
        cached = self._cache.get(scope)
        if cached is not None:
            return cached
        row = await self._pool.fetchrow(
            "SELECT master_key_id, wrapped_key FROM data_keys WHERE scope = $1", scope
        )
        if row is None or row["wrapped_key"] is None:
            raise ErasedDataError(
                f"the payloads of {scope} were erased: its data key "
                + ("was destroyed" if row else "does not exist")
            )
        try:
            data_key = unseal(
                self._ring.key(row["master_key_id"]), row["wrapped_key"], scope.encode()
            )
        except InvalidTag:
            raise TamperedPayloadError(f"the data key of {scope} does not authenticate") from None
        key = AESGCM(data_key)
        self._cache[scope] = key
        return key

    def forget(self, scopes: Iterable[str]) -> None:
        """Drop cached keys after erasing them, so this process stops using them at once."""
        for scope in scopes:
            self._cache.pop(scope, None)
