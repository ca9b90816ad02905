"""R24's report (activities/analytics_store.py SQL, GET /reports and its CSV) over ledger rows
written as the workflows write them, on real PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

import starter
from tests.helpers import as_role
from tests.integration.test_analytics_data_in import a_sku, analytics_api
from tests.integration.test_starter_cli import cli_env  # noqa: F401  (a fixture)

NOW = datetime.now(UTC)


@pytest.fixture
async def api(dev_env: WorkflowEnvironment, pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    async with analytics_api(dev_env, pool) as client:
        yield client


DAY = NOW.date().isoformat()


async def a_case(
    pool: asyncpg.Pool,
    sku: str,
    *,
    batch: str | None = "B1",
    kind: str = "return",
    reason: str = "quality_defect",
    quantity: int = 1,
    opened_at: datetime = NOW - timedelta(days=3),
    closed_after: timedelta | None = None,
    root_cause: str | None = None,
    category: str = "apparel",
    channel: str = "web",
    case_id: str | None = None,
) -> str:
    case_id = case_id or a_case_id(kind)
    await pool.execute(
        """INSERT INTO cases (case_id, kind, reason, channel, order_id, line_id, request_id,
               sku, category, customer_id, status, currency, paid_minor, refund_limit_minor,
               refunded_minor, policy_version, waiting_for, opened_at, closed_at, last_seq,
               updated_at, batch, quantity, root_cause)
           VALUES ($1, $2, $3, $10, 'O', '1', 'r1', $4, $11, 'cust-1', 'refunded',
                   'EUR', 5000, 5000, 0, 'test', 'nothing', $5, $6, 1, $5, $7, $8, $9)""",
        case_id, kind, reason, sku, opened_at,
        opened_at + closed_after if closed_after else None, batch, quantity, root_cause,
        channel, category,
    )  # fmt: skip
    return case_id


def a_case_id(kind: str = "return") -> str:
    return f"{kind}-O{uuid.uuid4().hex[:10]}-1-r1"


async def an_event(
    pool: asyncpg.Pool,
    case_id: str,
    seq: int,
    action: str,
    at: datetime,
    *,
    role: str = "system",
    details: dict[str, Any] | None = None,
    status: str = "x",
) -> None:
    await pool.execute(
        """INSERT INTO case_events (case_id, seq, occurred_at, actor, role, action,
                                    status_after, details)
           VALUES ($1, $2, $3, $4, $4, $5, $7, $6)""",
        case_id, seq, at, role, action, details or {}, status,
    )  # fmt: skip


async def delivered(pool: asyncpg.Pool, sku: str, batch: str, units: int) -> None:
    await pool.execute(
        "INSERT INTO delivered_units (sku, batch, day, units) VALUES ($1, $2, $3, $4)",
        sku, batch, (NOW - timedelta(days=5)).date(), units,
    )  # fmt: skip


async def report(api: httpx.AsyncClient, **filters: str) -> dict[str, Any]:
    answer = await api.get("/reports", params=filters, headers=as_role("agent"))
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def test_r24_return_rate_by_sku_and_batch_counts_returned_units_over_delivered(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    sku = a_sku()
    await delivered(pool, sku, "B1", 1000)
    await delivered(pool, sku, "B2", 500)
    await a_case(pool, sku, batch="B1", quantity=20)
    await a_case(pool, sku, batch="B1", kind="exchange", reason="not_as_described", quantity=10)
    await a_case(pool, sku, batch="B2", reason="changed_mind", quantity=5)
    await a_case(pool, sku, batch=None, quantity=3)  # no batch: the SKU's, no batch's
    # Not items sent back: a parcel lost or damaged in transit, one never received.
    await a_case(pool, sku, batch="B1", kind="damage_claim", reason="damaged_in_transit")
    await a_case(pool, sku, batch="B1", reason="not_received")

    found = await report(api, sku=sku)
    by_batch = {r["batch"]: (r["returned"], r["delivered"], r["rate"]) for r in found["by_batch"]}
    assert by_batch == {"B1": (30, 1000, 0.03), "B2": (5, 500, 0.01)}
    assert [(r["returned"], r["delivered"], r["rate"]) for r in found["by_sku"]] == [
        (38, 1500, pytest.approx(38 / 1500))
    ]
    narrowed = await report(api, sku=sku, reason="changed_mind")
    assert {r["batch"]: r["returned"] for r in narrowed["by_batch"]} == {"B1": 0, "B2": 5}


async def test_r24_unknown_filters_answer_empty_and_to_before_from_is_422_naming_to(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    sku = a_sku()
    await delivered(pool, sku, "B1", 100)
    await a_case(pool, sku, closed_after=timedelta(hours=5))
    for filters in ({"sku": "NO-SUCH-SKU"}, {"sku": sku, "batch": "NO-SUCH-BATCH"},
                    {"sku": sku, "to": "2001-01-01"}):  # fmt: skip
        found = await report(api, **filters)
        assert [found[s] for s in ("by_sku", "by_batch", "reasons", "time_to_resolve")] == [
            [], [], [], [],
        ]  # fmt: skip
        assert all(row["met"] == row["breached"] == 0 for row in found["sla"])
    refused = await api.get(
        "/reports", params={"from": "2026-11-10", "to": "2026-11-09"}, headers=as_role("agent")
    )
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["query.to"]
    as_csv = await api.get(
        "/reports/by_sku.csv", params={"from": "2026-11-10", "to": "2026-11-09"},
        headers=as_role("agent"),
    )  # fmt: skip
    assert as_csv.status_code == 422


async def test_r24_reasons_and_root_causes_and_time_to_resolve_p50_p90(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    sku = a_sku()
    for hours in range(1, 11):  # 1..10 hours to close
        await a_case(pool, sku, closed_after=timedelta(hours=hours))
    await a_case(pool, sku, reason="wrong_item", root_cause="picking_error")
    found = await report(api, sku=sku)
    assert found["reasons"] == [
        {"reason": "quality_defect", "root_cause": None, "cases": 10},
        {"reason": "wrong_item", "root_cause": "picking_error", "cases": 1},
    ]
    [resolved] = found["time_to_resolve"]
    assert (resolved["kind"], resolved["reason"], resolved["closed_cases"]) == (
        "return", "quality_defect", 10,
    )  # fmt: skip
    assert resolved["p50_hours"] == pytest.approx(5)
    assert resolved["p90_hours"] == pytest.approx(9)


async def test_r24_sla_compliance_per_rule_from_the_ledgers_timestamps(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    sku = a_sku()
    start = NOW - timedelta(days=3)
    on_time = await a_case(pool, sku)  # R10: an agent decided after 10 h
    await an_event(pool, on_time, 1, "review_started", start)
    await an_event(pool, on_time, 2, "approved", start + timedelta(hours=10),
                   role="agent")  # fmt: skip
    auto = await a_case(pool, sku)  # R11 approved it at 48 h: no person reviewed it
    await an_event(pool, auto, 1, "review_started", start)
    await an_event(pool, auto, 2, "approved", start + timedelta(hours=48))
    running = await a_case(pool, sku)  # under review for an hour: not judged yet
    await an_event(pool, running, 1, "review_started", NOW - timedelta(hours=1))
    late_refund = await a_case(pool, sku)  # R13: refund 30 h after a passed inspection
    await an_event(pool, late_refund, 1, "parcel_received", start)
    await an_event(pool, late_refund, 2, "inspection_passed", start + timedelta(hours=2))
    await an_event(pool, late_refund, 3, "refund_issued", start + timedelta(hours=32),
                   details={"amount_minor": 5000, "currency": "EUR"})  # fmt: skip

    found = await report(api, sku=sku)
    sla = {(r["rule"], r["what"].split()[1]): r for r in found["sla"]}
    review = sla[("R10", "person")]
    assert (review["met"], review["breached"], review["share_met"]) == (1, 1, 0.5)
    assert [(b["case_id"], b["ended_at"]) for b in review["breaches"]] == [(auto, None)]
    inspection, refund = sla[("R13", "returned")], sla[("R13", "refund")]
    assert (inspection["met"], inspection["breached"]) == (1, 0)
    assert (refund["met"], refund["breached"]) == (0, 1)
    assert refund["breaches"][0]["hours"] == pytest.approx(30)
    assert found["money"] == [
        {"action": "refund_issued", "currency": "EUR", "movements": 1, "amount_minor": 5000}
    ]

    breaches_csv = await api.get(
        "/reports/sla_breaches.csv", params={"sku": sku}, headers=as_role("agent")
    )
    assert breaches_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(breaches_csv.text)))
    # R10 twice for the case nobody reviewed: no review, and no first contact in 24 h.
    assert sorted((r["rule"], r["case_id"]) for r in rows) == sorted(
        [("R10", auto), ("R10", auto), ("R13", late_refund)]
    )
    # Each breach with its due time and how late past it; no claim on a case's clock.
    [refund_row] = [r for r in rows if r["rule"] == "R13"]
    assert datetime.fromisoformat(refund_row["due_at"]) == start + timedelta(hours=26)
    assert float(refund_row["hours_late"]) == pytest.approx(6)
    assert refund_row["claim_id"] == ""


async def test_r24_carrier_claims_claimed_vs_recovered_and_the_carriers_silence(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    sku = a_sku()
    case_id = await a_case(pool, sku, kind="damage_claim", reason="damaged_in_transit")
    claim_id = f"claim-{case_id}"
    await pool.execute(
        """INSERT INTO carrier_claims (claim_id, case_id, carrier, status, currency,
               claimed_minor, recovered_minor, file_deadline, last_seq, updated_at)
           VALUES ($1, $2, 'DHL', 'settled', 'EUR', 5000, 3000, $3, 2, $3)""",
        claim_id, case_id, NOW,
    )  # fmt: skip
    for seq, action, days in ((1, "claim_filed", 40), (2, "carrier_answered", 2)):
        await pool.execute(
            """INSERT INTO claim_events (claim_id, seq, occurred_at, action, status_after)
               VALUES ($1, $2, $3, $4, 'x')""",
            claim_id, seq, NOW - timedelta(days=days), action,
        )  # fmt: skip
    found = await report(api, sku=sku)
    assert found["carrier_claims"] == [
        {"currency": "EUR", "claims": 1, "claimed_minor": 5000, "recovered_minor": 3000}
    ]
    silence, filing = (
        next(r for r in found["sla"] if r["what"].startswith(what))
        for what in ("the carrier answers", "the claim is filed")
    )
    assert (silence["met"], silence["breached"]) == (0, 1)  # answered after 38 days
    assert (filing["met"], filing["breached"]) == (1, 0)  # filed 40 days before its deadline


async def test_r24_satisfaction_per_dimension_and_its_weekly_trend(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    sku = a_sku()
    for level in ("very_satisfied", "very_satisfied", "dissatisfied"):
        case_id = await a_case(pool, sku)
        await pool.execute(
            """INSERT INTO surveys (case_id, sent_at, answered_at, attitude, expertise,
                                    timeliness, promise_kept)
               VALUES ($1, $2, $2, $3, $3, $3, $3)""",
            case_id, NOW - timedelta(days=1), level,
        )  # fmt: skip
    found = await report(api, sku=sku)
    attitude = {r["level"]: r["answers"] for r in found["satisfaction"]
                if r["dimension"] == "attitude"}  # fmt: skip
    assert attitude == {"very_satisfied": 2, "dissatisfied": 1}
    week = (NOW - timedelta(days=1 + (NOW - timedelta(days=1)).weekday())).date().isoformat()
    assert {r["week"] for r in found["satisfaction_trend"]} == {week}
    # The trend as a mean score per week: (4 + 4 + 2) / 3 for each dimension.
    assert found["satisfaction_weekly_mean"] == [
        {"week": week, "dimension": d, "answers": 3, "mean_score": 10 / 3}
        for d in ("attitude", "expertise", "promise_kept", "timeliness")
    ]
    answer = await api.get("/reports/satisfaction_weekly_mean.csv", params={"sku": sku},
                           headers=as_role("agent"))  # fmt: skip
    assert answer.text.splitlines()[:2] == [
        "week,dimension,answers,mean_score",
        f"{week},attitude,3,{10 / 3}",
    ]


async def test_r24_the_report_is_for_staff(api: httpx.AsyncClient) -> None:
    assert (await api.get("/reports", headers=as_role("service"))).status_code == 403
    assert (await api.get("/reports/by_sku.csv", headers=as_role("supervisor"))).status_code == 200
    assert (await api.get("/reports/nothing.csv", headers=as_role("agent"))).status_code == 422


@pytest.mark.usefixtures("cli_env")
async def test_r24_the_report_from_the_command_line_as_json_and_csv(
    pool: asyncpg.Pool, capsys: pytest.CaptureFixture[str]
) -> None:
    sku = a_sku()
    await delivered(pool, sku, "B1", 400)
    await a_case(pool, sku, quantity=8)
    assert await starter.run(["report", "--sku", sku]) == 0
    found = json.loads(capsys.readouterr().out)
    assert [(r["batch"], r["rate"]) for r in found["by_batch"]] == [("B1", 0.02)]
    assert await starter.run(["report", "--sku", sku, "--csv", "by_batch"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "sku,batch,returned,delivered,rate",
        f"{sku},B1,8,400,0.02",
    ]
    refused = ["report", "--from", "2026-11-10", "--to", "2026-11-09"]
    assert await starter.run(refused) == starter.EXIT_REFUSED
    assert "to: before from" in capsys.readouterr().err
