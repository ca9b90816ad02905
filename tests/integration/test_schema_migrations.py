"""The schema's migrations (infra/database.py): a fresh database gets the baseline and
what follows it, once; a database built by another migration history (make run's
.data/postgres from before the baseline folded migrations 001-018) is refused with what
to do, never migrated on top."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from infra.database import ForeignSchemaError, create_pool, migrate


@pytest.fixture
async def fresh_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    name = f"aftersales_migrations_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    pool = await create_pool(urlunsplit(urlsplit(database_url)._replace(path=f"/{name}")))
    try:
        yield pool
    finally:
        await pool.close()
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def test_a_fresh_database_gets_the_baseline_once(fresh_pool: asyncpg.Pool) -> None:
    assert await migrate(fresh_pool) == ["001_baseline.sql"]
    assert await migrate(fresh_pool) == []
    recorded = await fresh_pool.fetch("SELECT version, name FROM schema_migrations")
    assert [tuple(row) for row in recorded] == [(1, "001_baseline.sql")]
    # R24: the SLA clocks' rules are schema, written by the baseline.
    assert await fresh_pool.fetchval("SELECT count(*) FROM sla_clock_rules") == 8


async def test_a_database_built_by_the_old_chain_is_refused_with_what_to_do(
    fresh_pool: asyncpg.Pool,
) -> None:
    await fresh_pool.execute(
        """CREATE TABLE schema_migrations (
               version integer PRIMARY KEY, name text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now());
           INSERT INTO schema_migrations (version, name)
           VALUES (1, '001_ledger.sql'), (2, '002_claims_and_shipments.sql')"""
    )
    with pytest.raises(ForeignSchemaError, match=r"001_ledger\.sql.*001_baseline\.sql.*make clean"):
        await migrate(fresh_pool)
    assert await fresh_pool.fetchval("SELECT to_regclass('cases')") is None


async def test_a_version_this_code_does_not_have_yet_is_left_alone(
    fresh_pool: asyncpg.Pool,
) -> None:
    # A newer release migrated the database first: an older process still starts.
    await migrate(fresh_pool)
    await fresh_pool.execute(
        "INSERT INTO schema_migrations (version, name) VALUES (999, '999_from_later.sql')"
    )
    assert await migrate(fresh_pool) == []
