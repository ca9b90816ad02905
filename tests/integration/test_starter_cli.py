"""starter.py as a backend service or a person uses it: JSON out, clear refusals."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

import starter
from domain.case import Role
from infra.alarm_schedule import batch_alarm_schedule_missing
from infra.security.edge_identity import authenticator, ensure_dev_clients
from infra.security.identity import MachineClients, Unauthenticated
from infra.settings import load_settings
from tests.conftest import a_request, eventually
from tests.identities import IDENTITIES

SHOP = IDENTITIES.credential("cli-shop", Role.SERVICE)
DOCK = IDENTITIES.credential("cli-dock", Role.WAREHOUSE)


@pytest.fixture
def cli_env(
    monkeypatch: pytest.MonkeyPatch,
    dev_env: WorkflowEnvironment,
    database_url: str,
    task_queue: str,
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", dev_env.client.service_client.config.target_host)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("AFTERSALES_TASK_QUEUE", task_queue)
    for name, value in IDENTITIES.environment().items():
        monkeypatch.setenv(name, value)


def open_flags(
    order_id: str, *, delivered_days_ago: int = 2, paid_minor: str = "2500"
) -> list[str]:
    delivered = datetime.now(UTC) - timedelta(days=delivered_days_ago)
    return [
        "open", "--order", order_id, "--line", "1", "--request", "r1", "--sku", "SKU-9",
        "--paid-minor", paid_minor, "--currency", "EUR", "--delivered-at", delivered.isoformat(),
        "--customer", "cust-1", "--time-zone", "Asia/Shanghai", "--channel", "phone_agent",
        "--token", SHOP,
    ]  # fmt: skip


@pytest.mark.usefixtures("cli_env")
async def test_open_prints_the_case_and_status_reads_it_back(
    dev_env: WorkflowEnvironment, running_worker: Any, capsys: pytest.CaptureFixture[str]
) -> None:  # R2
    order_id = a_request().order_id
    async with running_worker(dev_env.client):
        assert await starter.run(open_flags(order_id)) == 0
        opened = json.loads(capsys.readouterr().out)
        assert await starter.run(["status", opened["case_id"]]) == 0
        status = json.loads(capsys.readouterr().out)
    assert opened["case_id"] == f"return-{order_id}-1-r1"
    assert opened["channel"] == "phone_agent"
    assert status["status"] == "awaiting_ship_back"


@pytest.mark.usefixtures("cli_env")
async def test_open_from_a_json_file(
    dev_env: WorkflowEnvironment,
    running_worker: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # R2
    request = a_request(
        delivered_at=datetime.now(UTC) - timedelta(days=1), requested_after=timedelta(days=1)
    )
    file = tmp_path / "request.json"
    file.write_text(request.model_dump_json())
    async with running_worker(dev_env.client):
        assert await starter.run(["open", "--json", str(file), "--token", SHOP]) == 0
    assert json.loads(capsys.readouterr().out)["case_id"] == request.case_id


@pytest.mark.usefixtures("cli_env")
async def test_bad_input_names_the_field_and_is_kept(
    pool: asyncpg.Pool, capsys: pytest.CaptureFixture[str]
) -> None:  # bad input loses nothing
    order_id = a_request().order_id
    code = await starter.run(open_flags(order_id, paid_minor="-5"))
    error = capsys.readouterr().err
    assert code == starter.EXIT_REFUSED
    assert "paid.amount_minor" in error
    kept = await pool.fetchrow(
        "SELECT operation, payload, errors FROM refused_inputs WHERE payload LIKE $1",
        f"%{order_id}%",
    )
    assert kept is not None
    assert kept["operation"] == "open"
    assert "paid.amount_minor" in kept["errors"]["message"]


@pytest.mark.usefixtures("cli_env")
async def test_a_reason_that_does_not_fit_the_kind_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    flags = [*open_flags(a_request().order_id), "--reason", "lost_in_transit"]
    assert await starter.run(flags) == starter.EXIT_REFUSED
    assert "lost_in_transit" in capsys.readouterr().err


@pytest.mark.usefixtures("cli_env")
async def test_scan_for_an_unknown_case_exits_non_zero(
    capsys: pytest.CaptureFixture[str],
) -> None:  # R26
    code = await starter.run(
        ["scan", "return-NOPE-9-r9", "--scan-id", "cli-lost-1", "--event", "parcel_received",
         "--station", "DOCK-1", "--token", DOCK]
    )  # fmt: skip
    assert code == starter.EXIT_UNKNOWN_CASE
    assert "kept for review" in capsys.readouterr().err


@pytest.mark.usefixtures("cli_env")
async def test_status_of_an_unknown_case_exits_non_zero(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert await starter.run(["status", "return-NOPE-9-r9"]) == starter.EXIT_UNKNOWN_CASE
    assert "no case" in capsys.readouterr().err


@pytest.mark.usefixtures("cli_env")
async def test_inspected_scan_without_grade_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:  # R26
    code = await starter.run(
        ["scan", "return-X-1-r1", "--scan-id", "s-1", "--event", "inspected", "--station", "QC",
         "--token", DOCK]
    )  # fmt: skip
    assert code == starter.EXIT_REFUSED
    assert "grade is required" in capsys.readouterr().err


@pytest.mark.usefixtures("cli_env")
async def test_news_and_decisions_from_the_command_line(
    dev_env: WorkflowEnvironment, running_worker: Any, capsys: pytest.CaptureFixture[str]
) -> None:  # R6, R10, R17
    order_id = a_request().order_id
    async with running_worker(dev_env.client):
        assert await starter.run([*open_flags(order_id), "--reason", "quality_defect"]) == 0
        case_id = json.loads(capsys.readouterr().out)["case_id"]
        evidence = json.dumps({"event_id": "ev-1", "photos": ["crack.jpg"]})
        tell = ["tell", case_id, "evidence_submitted", "--json", evidence, "--token", SHOP]
        assert await starter.run(tell) == 0
        capsys.readouterr()
        await eventually(
            lambda: starter_status(case_id, capsys), lambda status: status == "under_review"
        )
        ann = IDENTITIES.token("agent-ann", Role.AGENT)
        too_much = json.dumps({"action_id": "c-1",
                               "amount": {"amount_minor": 9000, "currency": "EUR"},
                               "reason": "goodwill"})  # fmt: skip
        refused = await starter.run(
            ["decide", case_id, "offer_compensation", "--json", too_much, "--token", ann]
        )
        refusal = capsys.readouterr().err
        # R23: the payload cannot name someone other than the token's holder.
        as_bob = json.dumps({"action_id": "d-0", "actor": "supervisor-bob", "approve": True})
        spoofed = await starter.run(["decide", case_id, "decide", "--json", as_bob, "--token", ann])
        spoof_refusal = capsys.readouterr().err
        approve = json.dumps({"action_id": "d-1", "approve": True})
        assert (
            await starter.run(["decide", case_id, "decide", "--json", approve, "--token", ann]) == 0
        )
        decided = json.loads(capsys.readouterr().out)
    assert refused == starter.EXIT_REFUSED
    assert "R17" in refusal
    assert spoofed == starter.EXIT_UNAUTHORISED
    assert "--token" in spoof_refusal
    assert decided["status"] == "awaiting_ship_back"
    assert decided["decided_by"] == "agent-ann"


async def starter_status(case_id: str, capsys: pytest.CaptureFixture[str]) -> str:
    await starter.run(["status", case_id])
    status: str = json.loads(capsys.readouterr().out)["status"]
    return status


async def test_token_and_client_commands_issue_credentials_the_api_accepts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # R23
    """No services needed: a staff token signed with the local key, a machine credential
    stored hashed, and its revocation."""
    monkeypatch.delenv("AFTERSALES_JWKS", raising=False)
    monkeypatch.setenv("AFTERSALES_CLIENTS_FILE", str(tmp_path / "clients.json"))
    monkeypatch.setattr("infra.security.edge_identity.DEV_IDENTITY_DIR", tmp_path / "identity")
    clients = tmp_path / "clients.json"
    assert await starter.run(["token", "--role", "agent", "--name", "ann"]) == 0
    token = capsys.readouterr().out.strip()
    assert await starter.run(["client", "add", "--name", "dock-1", "--role", "warehouse"]) == 0
    credential = capsys.readouterr().out.strip()
    stored = clients.read_text()
    settings = load_settings()
    proven = authenticator(settings, tmp_path / "identity")
    ann = proven.authenticate(token)
    dock = proven.authenticate(credential)
    assert await starter.run(["client", "revoke", "--name", "dock-1"]) == 0
    with pytest.raises(Unauthenticated, match="revoked"):
        proven.authenticate(credential)
    assert (ann.actor, ann.roles) == ("ann", frozenset({Role.AGENT}))
    assert (dock.actor, dock.roles) == ("dock-1", frozenset({Role.WAREHOUSE}))
    assert credential.split("_", 2)[2] not in stored  # only its hash is kept
    assert clients.stat().st_mode & 0o077 == 0


def test_make_run_makes_its_machine_clients_once(tmp_path: Path) -> None:  # R23
    clients = MachineClients(tmp_path / "clients.json")
    written = ensure_dev_clients(clients, tmp_path / "identity")
    first = written.read_text()
    assert ensure_dev_clients(clients, tmp_path / "identity").read_text() == first
    credentials = dict(line.split("=", 1) for line in first.splitlines())
    proven = {var: clients.verify(credential) for var, credential in credentials.items()}
    assert {var: (p.actor, p.roles) for var, p in proven.items()} == {
        "SHOP": ("shop", frozenset({Role.SERVICE})),
        "DOCK": ("dock-1", frozenset({Role.WAREHOUSE})),
        "CARRIER": ("carrier-desk", frozenset({Role.CARRIER})),
    }
    assert written.stat().st_mode & 0o077 == 0


@pytest.mark.usefixtures("cli_env")
async def test_retention_deletes_refused_input_past_its_30_days(
    pool: asyncpg.Pool, capsys: pytest.CaptureFixture[str]
) -> None:
    tag = uuid.uuid4().hex
    await pool.execute(
        "INSERT INTO refused_inputs (source, operation, payload, errors, received_at) "
        "VALUES ('api', 'POST /cases', $1, '{}', now() - interval '31 days')",
        tag,
    )
    assert await starter.run(["retention"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["refused_inputs_deleted"] >= 1
    assert await pool.fetchval("SELECT count(*) FROM refused_inputs WHERE payload = $1", tag) == 0


@pytest.mark.usefixtures("cli_env")
async def test_nothing_is_sent_from_the_command_line_unproven(
    capsys: pytest.CaptureFixture[str],
) -> None:  # R23, R26
    """Before: `starter.py tell <case> warehouse_scan --json '{..., "scanned_by": "dock-1"}'`
    needed no credential and the ledger named dock-1 as the scanner of a refund."""
    case_id = f"return-{a_request().order_id}-1-r1"
    forged = json.dumps({"scan_id": "s-forged", "event": "inspected", "station": "QC",
                         "grade": "resellable", "scanned_by": "dock-1",
                         "scanned_at": datetime.now(UTC).isoformat()})  # fmt: skip
    as_shop = await starter.run(["tell", case_id, "warehouse_scan", "--json", forged,
                                 "--token", SHOP])  # fmt: skip
    shop_refusal = capsys.readouterr().err
    claimed = await starter.run(["tell", case_id, "warehouse_scan", "--json", forged,
                                 "--token", DOCK])  # fmt: skip
    claim_refusal = capsys.readouterr().err
    nobody = await starter.run(["tell", case_id, "warehouse_scan", "--json", forged,
                                "--token", "ac_nobody_secret"])  # fmt: skip
    assert (as_shop, claimed, nobody) == (starter.EXIT_UNAUTHORISED,) * 3
    assert "warehouse" in shop_refusal
    assert "scanned_by comes from --token" in claim_refusal
    with pytest.raises(SystemExit):  # argparse: --token is required
        await starter.run(["scan", case_id, "--scan-id", "s-1", "--event", "parcel_received",
                           "--station", "DOCK-1"])  # fmt: skip


@pytest.mark.usefixtures("cli_env")
async def test_setup_registers_the_batch_alarm_schedule_once(
    dev_env: WorkflowEnvironment, capsys: pytest.CaptureFixture[str]
) -> None:  # R24
    assert await starter.run(["setup"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert await starter.run(["setup"]) == 0
    again = json.loads(capsys.readouterr().out)

    assert first["migrations"] == "applied"
    assert "CaseStatus" in first["search_attributes"]
    assert again["batch_alarm_schedule"] == "already registered"
    assert await batch_alarm_schedule_missing(dev_env.client) is None
