"""Issue 18: 001_baseline.sql builds the schema the migration chain 001-018 built. Applied
once: the chain to one fresh database (as `migrate` applies it), the baseline to another,
and their catalogs compared: relations, columns (position, type, default, nullability,
generation), constraints, domains, indexes, functions (their whole definition), triggers,
views, sequences, rules, policies, extensions, and the rows the schema itself holds. The
chain and this test are deleted in the commit after the one that ran it."""

from __future__ import annotations

import difflib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from infra.database import create_pool, migrate

BASELINE = Path(__file__).parent.parent / "infra" / "migrations" / "baseline.sql"

# One line per schema object, in a stable order.
CATALOG = (
    "SELECT 'extension', extname, extversion FROM pg_extension ORDER BY 2",
    """SELECT 'schema', nspname FROM pg_namespace
       WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' ORDER BY 2""",
    """SELECT 'relation', c.relname, c.relkind, c.relpersistence, c.relrowsecurity,
              coalesce(array_to_string(c.reloptions, ','), '')
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = 'public' ORDER BY 2""",
    # position: as a reader of `SELECT *` or of a row type sees it (dropped columns skipped)
    """SELECT 'column', c.relname,
              row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum) AS position, a.attname,
              format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity,
              a.attgenerated, coalesce(pg_get_expr(ad.adbin, ad.adrelid), ''),
              a.attcollation::regcollation::text, a.attstorage
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
       WHERE n.nspname = 'public' AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 2, 3""",
    """SELECT 'constraint', coalesce(c.relname, t.typname), k.conname, k.contype,
              k.condeferrable, k.condeferred, k.convalidated, pg_get_constraintdef(k.oid)
       FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace
            LEFT JOIN pg_class c ON c.oid = k.conrelid LEFT JOIN pg_type t ON t.oid = k.contypid
       WHERE n.nspname = 'public' ORDER BY 2, 3""",
    """SELECT 'type', t.typname, t.typtype, format_type(t.typbasetype, t.typtypmod),
              t.typnotnull, coalesce(t.typdefault, '')
       FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
       WHERE n.nspname = 'public' AND t.typtype NOT IN ('b', 'c') ORDER BY 2""",
    """SELECT 'index', i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
       FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = 'public' ORDER BY 2""",
    """SELECT 'function', p.oid::regprocedure::text, p.prokind, pg_get_functiondef(p.oid)
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
       WHERE n.nspname = 'public' ORDER BY 2""",
    """SELECT 'trigger', c.relname, t.tgname, t.tgenabled, pg_get_triggerdef(t.oid)
       FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = 'public' AND NOT t.tgisinternal ORDER BY 2, 3""",
    """SELECT 'view', c.relname, pg_get_viewdef(c.oid)
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = 'public' AND c.relkind IN ('v', 'm') ORDER BY 2""",
    """SELECT 'sequence', s.seqrelid::regclass::text, format_type(s.seqtypid, NULL),
              s.seqstart, s.seqincrement, s.seqmax, s.seqmin, s.seqcache, s.seqcycle,
              (SELECT d.refobjid::regclass::text || '.' || a.attname
               FROM pg_depend d JOIN pg_attribute a
                    ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
               WHERE d.objid = s.seqrelid AND d.deptype = 'a') AS owned_by
       FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = 'public' ORDER BY 2""",
    """SELECT 'rule', tablename, rulename, definition FROM pg_rules
       WHERE schemaname = 'public' ORDER BY 2, 3""",
    """SELECT 'policy', tablename, policyname FROM pg_policies
       WHERE schemaname = 'public' ORDER BY 2, 3""",
    """SELECT 'comment', d.classoid::regclass::text, c.relname, d.objsubid, d.description
       FROM pg_description d JOIN pg_class c ON c.oid = d.objoid
            JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = 'public' ORDER BY 2, 3, 4""",
    # the rows the schema itself holds: the SLA clocks' rules, and every table's count
    "SELECT 'sla_clock_rules row', to_jsonb(r)::text FROM sla_clock_rules r ORDER BY r.clock",
    """SELECT 'rows', c.relname,
              (xpath('/row/n/text()', query_to_xml(
                  format('SELECT count(*) AS n FROM %I', c.relname), false, true, '')))[1]::text
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 2""",
)


async def _catalog(url: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        lines = []
        for query in CATALOG:
            for row in await conn.fetch(query):
                lines.append(" | ".join(str(value) for value in row.values()))
        return lines
    finally:
        await conn.close()


@pytest.fixture
async def baseline_url(database_url: str) -> AsyncIterator[str]:
    name = f"aftersales_baseline_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(database_url)._replace(path=f"/{name}"))
    try:
        conn = await asyncpg.connect(url)
        try:
            async with conn.transaction():
                await conn.execute(BASELINE.read_text(encoding="utf-8"))
        finally:
            await conn.close()
        yield url
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def test_the_baseline_builds_the_schema_the_chain_built(
    database_url: str, baseline_url: str
) -> None:
    pool = await create_pool(database_url)
    try:
        applied = await migrate(pool)
        await pool.execute("DROP TABLE schema_migrations")
    finally:
        await pool.close()
    chain = await _catalog(database_url)
    baseline = await _catalog(baseline_url)
    print(f"chain applied: {', '.join(applied)}")
    print(f"catalog lines compared: {len(chain)}")
    for kind in sorted({line.split(" | ")[0] for line in chain}):
        print(f"  {kind}: {sum(line.split(' | ')[0] == kind for line in chain)}")
    assert applied[-1] == "018_desk_sessions.sql"
    assert chain == baseline, "\n".join(difflib.unified_diff(chain, baseline, lineterm=""))
