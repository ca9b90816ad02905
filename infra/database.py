"""Connection pool and versioned, idempotent schema migrations."""

from __future__ import annotations

import json
import re
from importlib import resources
from urllib.parse import urlsplit, urlunsplit

import asyncpg

_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
# Any constant shared by every process that migrates this schema; serialises them.
_MIGRATION_LOCK_KEY = 0x61667465


async def _use_json_for_jsonb(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


class DatabaseUnreachableError(ConnectionError):
    pass


class ForeignSchemaError(RuntimeError):
    """The database records a migration under a number this code gives another one."""


async def _reset_if_needed(connection: asyncpg.Connection) -> None:
    """Our sessions keep no state between uses (advisory locks are transaction-scoped; no
    LISTEN, no SET): instead of the pool's reset query on every release, only a
    transaction left open by a failure is rolled back."""
    if connection.is_in_transaction():
        await connection.execute("ROLLBACK")


async def create_pool(database_url: str, *, max_size: int = 10) -> asyncpg.Pool:
    try:
        pool = await asyncpg.create_pool(
            database_url,
            min_size=1,
            max_size=max_size,
            init=_use_json_for_jsonb,
            reset=_reset_if_needed,
        )
    except (OSError, asyncpg.PostgresError) as error:
        where = urlsplit(database_url)._replace(netloc=urlsplit(database_url).hostname or "")
        raise DatabaseUnreachableError(
            f"cannot reach PostgreSQL at DATABASE_URL={urlunsplit(where)} "
            f"(unset, it is make run's embedded server): {error}"
        ) from error
    if pool is None:  # asyncpg types allow it; a real pool never is
        raise RuntimeError("asyncpg returned no pool")
    return pool


def _migrations() -> list[tuple[int, str, str]]:
    found = []
    for entry in resources.files("infra.migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


async def migrate(pool: asyncpg.Pool) -> list[str]:
    """Apply every migration not applied yet, each in its own transaction; returns their names."""
    applied_now = []
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK_KEY)
        try:
            await conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version integer PRIMARY KEY,
                       name text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            recorded = await conn.fetch("SELECT version, name FROM schema_migrations")
            done = {r["version"]: r["name"] for r in recorded}
            migrations = _migrations()
            _refuse_foreign_history(done, migrations)
            for version, name, sql in migrations:
                if version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                        version,
                        name,
                    )
                applied_now.append(name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK_KEY)
    return applied_now


def _refuse_foreign_history(done: dict[int, str], migrations: list[tuple[int, str, str]]) -> None:
    """A recorded migration this code names otherwise means another schema history: a
    development database built by the chain 001_ledger.sql..018 that 001_baseline.sql
    replaced (nothing had been deployed), or one from another branch. Migrating on would
    skip the baseline and leave the schema unknown, so the process stops and says what to
    do. Versions this code does not have yet (a newer release migrated) are left alone."""
    ours = {version: name for version, name, _ in migrations}
    foreign = sorted(
        (version, name) for version, name in done.items() if ours.get(version, name) != name
    )
    if foreign:
        version, name = foreign[0]
        raise ForeignSchemaError(
            f"this database records migration {name} as version {version}, which this "
            f"code names {ours[version]}: its schema comes from another migration history "
            "(before issue 18, migrations 001-018 were folded into 001_baseline.sql). "
            "Nothing in it was deployed data: recreate it (`make clean` for make run's "
            "embedded .data/postgres, or drop the database) and start again."
        )


async def pending_migrations(pool: asyncpg.Pool) -> list[str]:
    """The migrations this code has that the database has not applied (readiness)."""
    async with pool.acquire() as conn:
        if await conn.fetchval("SELECT to_regclass('schema_migrations')") is None:
            return [name for _, name, _ in _migrations()]
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
    return [name for version, name, _ in _migrations() if version not in done]
