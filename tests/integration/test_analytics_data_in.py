"""R24's data in: a case's batch, and delivered units by API and CSV (real PostgreSQL)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

import starter
from activities.policy_file import load_policy_file
from domain.case import Role
from infra.gateway import CaseGateway
from infra.settings import DEFAULT_POLICY_FILE
from tests.conftest import a_request, eventually
from tests.helpers import api_client, as_role, open_case
from tests.identities import IDENTITIES
from tests.integration.test_starter_cli import cli_env  # noqa: F401  (a fixture)

SHOP = IDENTITIES.credential("cli-shop", Role.SERVICE)


@asynccontextmanager
async def analytics_api(
    env: WorkflowEnvironment, pool: asyncpg.Pool
) -> AsyncIterator[httpx.AsyncClient]:
    """The API with no worker: analytics reads and writes PostgreSQL only."""
    gateway = CaseGateway(env.client, pool, "no-worker", load_policy_file(DEFAULT_POLICY_FILE))
    async with api_client(gateway) as client:
        yield client


@pytest.fixture
async def api(dev_env: WorkflowEnvironment, pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    async with analytics_api(dev_env, pool) as client:
        yield client


def a_sku() -> str:
    return f"SKU-{uuid.uuid4().hex[:8]}"


async def units_of(pool: asyncpg.Pool, sku: str) -> dict[tuple[str, str], int]:
    rows = await pool.fetch(
        "SELECT batch, day::text, units FROM delivered_units WHERE sku = $1", sku
    )
    return {(r["batch"], r["day"]): r["units"] for r in rows}


async def test_r24_delivered_units_are_idempotent_and_a_correction_replaces_the_total(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    sku = a_sku()
    rows = [
        {"sku": sku, "batch": "B1", "day": "2026-11-02", "units": 120},
        {"sku": sku, "batch": "B2", "day": "2026-11-02", "units": 80},
    ]
    first = await api.post("/deliveries", json={"rows": rows}, headers=as_role("service"))
    again = await api.post("/deliveries", json={"rows": rows}, headers=as_role("service"))
    corrected = [rows[0] | {"units": 125}, rows[1]]
    fixed = await api.post("/deliveries", json={"rows": corrected}, headers=as_role("service"))
    assert [r.status_code for r in (first, again, fixed)] == [200, 200, 200]
    assert [r.json()["changed"] for r in (first, again, fixed)] == [2, 0, 1]
    assert await units_of(pool, sku) == {("B1", "2026-11-02"): 125, ("B2", "2026-11-02"): 80}


async def test_r24_only_a_service_reports_deliveries(api: httpx.AsyncClient) -> None:
    body = {"rows": [{"sku": a_sku(), "batch": "B1", "day": "2026-11-02", "units": 1}]}
    answer = await api.post("/deliveries", json=body, headers=as_role("agent"))
    assert answer.status_code == 403


@pytest.mark.parametrize(
    ("bad_row", "field"),
    [
        ({"units": -1}, "rows.1.units"),
        ({"units": "12"}, "rows.1.units"),
        ({"day": "2026-02-30"}, "rows.1.day"),
        ({"batch": "lot 7"}, "rows.1.batch"),
        ({"colour": "red"}, "rows.1.colour"),
    ],
)
async def test_r24_a_bad_row_refuses_the_report_naming_row_and_field_and_is_kept(
    api: httpx.AsyncClient, pool: asyncpg.Pool, bad_row: dict[str, Any], field: str
) -> None:
    sku = a_sku()
    good = {"sku": sku, "batch": "B1", "day": "2026-11-02", "units": 10}
    body = {"rows": [good, good | {"batch": "B2"} | bad_row]}
    answer = await api.post("/deliveries", json=body, headers=as_role("service"))
    assert answer.status_code == 422
    assert [e["field"] for e in answer.json()["errors"]] == [field]
    assert await units_of(pool, sku) == {}  # nothing stored, not even the good row
    kept = await pool.fetchval(
        "SELECT errors->>'message' FROM refused_inputs "
        "WHERE operation = 'POST /deliveries' AND strpos(payload, $1) > 0",
        sku,
    )
    assert kept is not None
    assert field in kept


async def test_r24_the_same_day_twice_in_one_report_is_refused_naming_both_rows(
    api: httpx.AsyncClient,
) -> None:
    row = {"sku": a_sku(), "batch": "B1", "day": "2026-11-02", "units": 10}
    answer = await api.post(
        "/deliveries", json={"rows": [row, row | {"units": 11}]}, headers=as_role("service")
    )
    assert answer.status_code == 422
    assert "rows.1: the same sku, batch and day as rows.0" in answer.json()["detail"]


async def test_r24_a_case_carries_its_batch_and_quantity_into_the_read_model(
    time_skipping_env: WorkflowEnvironment, task_queue: str, running_worker: Any, pool: asyncpg.Pool
) -> None:
    request = a_request().model_copy(update={"batch": "LOT-2026-11-A", "quantity": 3})
    async with running_worker(time_skipping_env.client):
        await open_case(time_skipping_env, task_queue, request)
        row = await eventually(
            lambda: pool.fetchrow(
                "SELECT batch, quantity FROM cases WHERE case_id = $1", request.case_id
            ),
            lambda found: found is not None,
        )
    assert row is not None
    assert (row["batch"], row["quantity"]) == ("LOT-2026-11-A", 3)


async def test_r24_an_opening_request_without_a_batch_still_opens_and_a_bad_batch_is_refused(
    api: httpx.AsyncClient,
) -> None:
    body = a_request().model_dump(mode="json", exclude_none=True) | {"batch": "lot/7"}
    answer = await api.post("/cases", json=body, headers=as_role("service"))
    assert answer.status_code == 422
    assert [e["field"] for e in answer.json()["errors"]] == ["batch"]


@pytest.mark.usefixtures("cli_env")
async def test_r24_csv_import_stores_good_rows_and_keeps_each_bad_row_with_its_line(
    pool: asyncpg.Pool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sku = a_sku()
    csv_file = tmp_path / "deliveries.csv"
    csv_file.write_text(
        "sku,batch,day,units\n"
        f"{sku},B1,2026-11-02,100\n"
        f"{sku},B1,2026-11-03,-4\n"
        f"{sku},B2,2026-11-31,7\n"
        f"{sku},B2,2026-11-02,50\n"
        f"{sku},B1,2026-11-02,101\n"
        f"{sku},B3\n",
        encoding="utf-8",
    )
    flags = ["import-deliveries", str(csv_file), "--token", SHOP]
    assert await starter.run(flags) == starter.EXIT_REFUSED
    first = json.loads(capsys.readouterr().out)
    assert (first["received"], first["changed"]) == (2, 2)
    assert [(r["line"], r["errors"].split(":")[0]) for r in first["refused"]] == [
        (3, "units"),
        (4, "day"),
        (6, "the same sku, batch and day as line 2"),
        (7, "2 columns, not 4"),
    ]
    assert await units_of(pool, sku) == {("B1", "2026-11-02"): 100, ("B2", "2026-11-02"): 50}
    kept = await pool.fetch(
        "SELECT operation, errors->>'message' AS errors FROM refused_inputs "
        "WHERE source = 'starter' AND strpos(payload, $1) > 0 ORDER BY id",
        sku,
    )
    assert [r["operation"] for r in kept] == [f"import-deliveries line {n}" for n in (3, 4, 6, 7)]
    assert kept[0]["errors"].startswith("line 3: units: Input should be greater than or equal")

    # Sent again: the good rows change nothing.
    assert await starter.run(flags) == starter.EXIT_REFUSED
    assert json.loads(capsys.readouterr().out)["changed"] == 0


@pytest.mark.usefixtures("cli_env")
async def test_r24_csv_import_needs_a_service_credential(tmp_path: Path) -> None:
    csv_file = tmp_path / "deliveries.csv"
    csv_file.write_text("sku,batch,day,units\n", encoding="utf-8")
    dock = IDENTITIES.credential("cli-dock", Role.WAREHOUSE)
    flags = ["import-deliveries", str(csv_file), "--token", dock]
    assert await starter.run(flags) == starter.EXIT_UNAUTHORISED
