"""A customer's erasure (GDPR art. 17) and the retention rule, as docs/privacy.md states
them. The SQL that redacts lives in the schema (`redact_free_text`), so erasure and
retention redact alike."""

from __future__ import annotations

import uuid
from datetime import timedelta

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from pydantic import BaseModel
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from domain.case import Role
from domain.errors import FieldError
from domain.ledger import LedgerAction
from domain.workflow_ids import WorkflowKind, child_workflow_id

# What an erased customer's free text reads afterwards.
ERASED = "[erased on the customer's request]"
# How long refused input is kept for a person to look at, and how long a closed case's
# free text stays for disputes and legal claims (docs/privacy.md says why).
REFUSED_INPUTS_RETENTION = timedelta(days=30)
FREE_TEXT_RETENTION = timedelta(days=730)
# The ledger event each erased case gets (R23: the erasure is on record too).
_ERASURE_ACTION = LedgerAction.CUSTOMER_ERASED


class CustomerHasOpenCasesError(FieldError):
    """Erasure waits until every case of the customer (and its survey and carrier claim)
    has closed: their workflows still need the data, and its key, to run."""

    def __init__(self, open_ones: list[str]) -> None:
        super().__init__(
            "erasure waits until these are closed, then send it again: " + "; ".join(open_ones),
            field="customer_id",
        )


class ErasureReport(BaseModel):
    cases: list[str]
    data_keys_destroyed: int


class RetentionReport(BaseModel):
    refused_inputs_deleted: int
    cases_redacted: int


async def erase_customer(
    client: Client, pool: asyncpg.Pool, customer_id: str, *, actor: str, role: Role
) -> ErasureReport:
    """Pseudonymise the customer in the ledger, remove their free text, destroy their
    cases' data keys (their Temporal payloads become unreadable) and record the erasure on
    each case. Money movements and the events' rows, actions and times stay. Idempotent:
    once erased, the customer id is found nowhere, and a second call erases nothing."""
    checked = await _cases_of(pool, customer_id)
    open_ones = await _still_open(client, pool, checked)
    if open_ones:
        raise CustomerHasOpenCasesError(open_ones)
    # One pseudonym for all the customer's rows, so the audit trail still shows the
    # cases belong to one person; random, so nothing leads back from it to the id.
    pseudonym = f"erased-{uuid.uuid4().hex[:16]}"
    async with pool.acquire() as conn, conn.transaction():
        # Two erasures of one customer do not interleave; the second finds nothing left.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", customer_id)
        case_ids = await _cases_of(conn, customer_id)
        if not set(case_ids) <= set(checked):
            # A case opened meanwhile: it is not closed yet.
            raise CustomerHasOpenCasesError(sorted(set(case_ids) - set(checked)))
        await conn.execute("SELECT redact_free_text($1, $2)", case_ids, ERASED)
        await _pseudonymise(conn, customer_id, pseudonym, case_ids)
        destroyed = await conn.fetchval(
            """WITH destroyed AS (
                   UPDATE data_keys SET wrapped_key = NULL, destroyed_at = now()
                   WHERE scope = ANY($1) RETURNING 1)
               SELECT count(*) FROM destroyed""",
            case_ids,
        )
        await conn.execute(
            """INSERT INTO case_events (case_id, seq, occurred_at, actor, role, action,
                                        reason, status_after, details)
               SELECT c.case_id, e.last + 1, now(), $2, $3, $4, $5, c.status,
                      jsonb_build_object('data_keys_destroyed', $6::int)
               FROM cases c,
                    LATERAL (SELECT coalesce(max(seq), 0) AS last FROM case_events
                             WHERE case_id = c.case_id) e
               WHERE c.case_id = ANY($1)""",
            case_ids,
            actor,
            role,
            _ERASURE_ACTION,
            "personal data erased on the customer's request (GDPR art. 17): customer id "
            "pseudonymised, free text removed, the case's data key destroyed",
            destroyed,
        )
        await conn.execute(
            """UPDATE cases SET last_seq = e.last, updated_at = now()
               FROM (SELECT case_id, max(seq) AS last FROM case_events
                     WHERE case_id = ANY($1) GROUP BY case_id) e
               WHERE cases.case_id = e.case_id""",
            case_ids,
        )
    return ErasureReport(cases=sorted(case_ids), data_keys_destroyed=destroyed)


async def apply_retention(
    pool: asyncpg.Pool,
    *,
    refused_inputs_for: timedelta = REFUSED_INPUTS_RETENTION,
    free_text_for: timedelta = FREE_TEXT_RETENTION,
) -> RetentionReport:
    """The retention rule, run by `starter.py retention` (daily, from cron or a schedule)."""
    row = await pool.fetchrow(
        "SELECT * FROM apply_retention($1, $2)", refused_inputs_for, free_text_for
    )
    if row is None:
        raise RuntimeError("apply_retention returned no row")
    return RetentionReport(**dict(row))


async def _cases_of(db: asyncpg.Pool | PoolConnectionProxy, customer_id: str) -> list[str]:
    """Every case the customer opened: each request is stored before its case starts;
    cases from before case_requests existed are in the read model only."""
    rows = await db.fetch(
        """SELECT case_id FROM case_requests WHERE request->'customer'->>'customer_id' = $1
           UNION SELECT case_id FROM cases WHERE customer_id = $1""",
        customer_id,
    )
    return sorted(r["case_id"] for r in rows)


async def _still_open(client: Client, pool: asyncpg.Pool, case_ids: list[str]) -> list[str]:
    """What still runs for these cases, each named with why it blocks the erasure."""
    closed = {
        r["case_id"]
        for r in await pool.fetch(
            "SELECT case_id FROM cases WHERE case_id = ANY($1) AND closed_at IS NOT NULL",
            case_ids,
        )
    }
    claims = await pool.fetch(
        "SELECT case_id, claim_id FROM carrier_claims WHERE case_id = ANY($1)", case_ids
    )
    open_ones = [f"case {c} is not closed" for c in case_ids if c not in closed]
    # A closed case may still run its R19 dispute window, its R25 survey or its R15
    # carrier claim, which read the case's payloads (and so its data key).
    workflows = [(c, c, "its dispute window (R19)") for c in closed]
    workflows += [
        (c, child_workflow_id(WorkflowKind.SURVEY, c), "its satisfaction survey (R25)")
        for c in closed
    ]
    workflows += [(r["case_id"], r["claim_id"], "its carrier claim (R15)") for r in claims]
    for case_id, workflow_id, what in workflows:
        if await _running(client, workflow_id):
            open_ones.append(f"case {case_id} has {what} running as {workflow_id}")
    return open_ones


async def _running(client: Client, workflow_id: str) -> bool:
    try:
        described = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as error:
        if error.status is RPCStatusCode.NOT_FOUND:
            return False
        raise
    return described.status is WorkflowExecutionStatus.RUNNING


async def _pseudonymise(
    conn: PoolConnectionProxy, customer_id: str, pseudonym: str, case_ids: list[str]
) -> None:
    """The customer id replaced wherever it landed; time zones reset to UTC (a valid zone,
    so a stored request still reads back)."""
    await conn.execute(
        "UPDATE cases SET customer_id = $2 WHERE case_id = ANY($3) AND customer_id = $1",
        customer_id,
        pseudonym,
        case_ids,
    )
    await conn.execute("SELECT set_config('aftersales.redacting', 'on', true)")
    await conn.execute(
        "UPDATE case_events SET actor = $2 WHERE case_id = ANY($3) AND actor = $1",
        customer_id,
        pseudonym,
        case_ids,
    )
    await conn.execute("SELECT set_config('aftersales.redacting', 'off', true)")
    await conn.execute(
        """UPDATE case_requests SET request = jsonb_set(request, '{customer}',
               jsonb_build_object('customer_id', $2::text, 'time_zone', 'UTC'))
           WHERE case_id = ANY($3) AND request->'customer'->>'customer_id' = $1""",
        customer_id,
        pseudonym,
        case_ids,
    )
    await conn.execute(
        "UPDATE notifications SET customer_id = $2 WHERE customer_id = $1", customer_id, pseudonym
    )
    # Refused input is raw text: what names the customer, or was sent to one of their
    # cases, goes whole.
    await conn.execute(
        r"""UPDATE refused_inputs SET payload = $3
            WHERE payload ~ ('"customer_id"\s*:\s*"' || regexp_replace($1, '([.])', '\\\1', 'g')
                             || '"')
               OR EXISTS (SELECT 1 FROM unnest($2::text[]) c
                          WHERE strpos(operation || '/', '/cases/' || c || '/') > 0
                             OR strpos(payload, '"' || c || '"') > 0)""",
        customer_id,
        case_ids,
        ERASED,
    )
