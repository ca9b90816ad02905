"""What callers see by role, a customer's erasure (GDPR art. 17) and the retention rule,
against the dev server and PostgreSQL (docs/privacy.md)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.api.common.v1 import Payload, WorkflowExecution
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest
from temporalio.testing import WorkflowEnvironment

from domain.case import Customer, Reason
from domain.survey import Satisfaction, SurveyAnswers
from domain.workflow_ids import WorkflowKind, child_workflow_id
from infra.security.codec import ErasedDataError
from infra.security.privacy import apply_retention
from tests.conftest import a_request, eventually
from tests.helpers import as_role
from workflows.survey import SatisfactionSurvey

# Every table that may hold personal data (infra/migrations).
PERSONAL_TABLES = (
    "cases", "case_events", "case_requests", "refused_inputs", "notifications", "surveys",
    "scans", "unmatched_scans", "case_notes", "case_tracking_numbers",
)  # fmt: skip


@dataclass(frozen=True)
class Markers:
    """Personal data a test sends, each unique, so it can be looked for anywhere."""

    customer_id: str
    time_zone: str
    note: str
    photo: str
    complaint: str
    tracking_number: str
    agent_reason: str
    scan_photo: str
    survey_comment: str
    staff_note: str

    @classmethod
    def fresh(cls) -> Markers:
        tag = uuid.uuid4().hex[:12]
        return cls(
            customer_id=f"cust-{tag}",
            time_zone="Pacific/Chatham",
            note=f"note-{tag}",
            photo=f"https://photos.example/{tag}.jpg",
            complaint=f"complaint-{tag}",
            tracking_number=f"TRK{tag}",
            agent_reason=f"agent-reason-{tag}",
            scan_photo=f"https://scans.example/{tag}.jpg",
            survey_comment=f"comment-{tag}",
            staff_note=f"staff-note-{tag}",
        )

    def all(self) -> list[str]:
        # A time zone is no unique marker (other customers share it): checked on its own.
        return [v for k, v in vars(self).items() if k != "time_zone"]


def opening(markers: Markers, *, reason: Reason = Reason.QUALITY_DEFECT) -> dict[str, Any]:
    now = datetime.now(UTC)
    request = a_request(delivered_at=now - timedelta(days=2), requested_after=timedelta(days=1),
                        reason=reason)  # fmt: skip
    customer = Customer(customer_id=markers.customer_id, time_zone=markers.time_zone)
    return request.model_copy(update={"customer": customer}).model_dump(
        mode="json", exclude_none=True
    )


async def read(api: httpx.AsyncClient, case_id: str, token: str) -> httpx.Response:
    return await api.get(f"/cases/{case_id}", headers=as_role(token))


async def status_is(api: httpx.AsyncClient, case_id: str, status: str) -> None:
    async def probe() -> httpx.Response:
        return await read(api, case_id, "agent")

    answer = await eventually(probe, lambda r: r.json().get("status") == status)
    assert answer.json()["status"] == status, answer.text


async def a_refunded_case(
    api: httpx.AsyncClient, env: WorkflowEnvironment, markers: Markers
) -> str:
    """A quality-defect return that carried every kind of personal data to its refund,
    its survey answered, every workflow of it closed."""
    service, now = as_role("service"), datetime.now(UTC).isoformat()
    case_id: str = (await api.post("/cases", json=opening(markers), headers=service)).json()[
        "case_id"
    ]
    await status_is(api, case_id, "awaiting_evidence")
    evidence = {"event_id": "ev-1", "photos": [markers.photo], "note": markers.note}
    await api.post(f"/cases/{case_id}/evidence", json=evidence, headers=service)
    # Refused input that names the customer's case: kept, until the erasure.
    await api.post(f"/cases/{case_id}/evidence", json=evidence | {"x": 1}, headers=service)
    await status_is(api, case_id, "under_review")
    complaint = {"event_id": "c-1", "summary": markers.complaint}
    await api.post(f"/cases/{case_id}/complaint", json=complaint, headers=service)
    decision = {"action_id": "d-1", "approve": True, "reason": markers.agent_reason}
    decided = await api.post(f"/cases/{case_id}/decision", json=decision,
                             headers=as_role("agent", "agent-ann"))  # fmt: skip
    assert decided.status_code == 200, decided.text
    shipped = {"event_id": "s-1", "carrier": "DHL", "tracking_number": markers.tracking_number,
               "shipped_at": now}  # fmt: skip
    await api.post(f"/cases/{case_id}/shipped-back", json=shipped, headers=service)
    await status_is(api, case_id, "in_return_transit")
    dock = {"scan_id": f"{case_id}-dock", "event": "parcel_received", "station": "DOCK-1"}
    sent = {"scans": [dock | {"barcode": case_id, "scanned_at": now}]}
    assert (await api.post("/scans", json=sent, headers=as_role("warehouse"))).is_success
    # The inspection's label misread: kept for a person, who attaches it to the case (R26).
    qc = {"scan_id": f"{case_id}-qc", "event": "inspected", "station": "QC-1",
          "grade": "resellable", "photos": [markers.scan_photo]}  # fmt: skip
    misread = {"scans": [qc | {"barcode": f"{case_id}x", "scanned_at": now}]}
    assert (await api.post("/scans", json=misread, headers=as_role("warehouse"))).status_code == 404
    attached = await api.post(f"/unmatched-scans/{qc['scan_id']}/attachment",
                              json={"case_id": case_id, "reason": "label misread at QC"},
                              headers=as_role("agent"))  # fmt: skip
    assert attached.status_code == 200, attached.text
    await env.client.get_workflow_handle(case_id).result()
    survey = env.client.get_workflow_handle(child_workflow_id(WorkflowKind.SURVEY, case_id))
    good = Satisfaction.SATISFIED
    answers = SurveyAnswers(answer_id="a-1", attitude=good, expertise=good, timeliness=good,
                            promise_kept=good, comment=markers.survey_comment)  # fmt: skip
    await survey.signal(SatisfactionSurvey.survey_answered, answers)
    await survey.result()
    return case_id


async def where_found(pool: asyncpg.Pool, markers: Markers) -> dict[str, list[str]]:
    """Which marker each personal-data table still holds."""
    found: dict[str, list[str]] = {}
    for table in PERSONAL_TABLES:
        rows = await pool.fetch(f"SELECT t::text AS row FROM {table} t")
        hits = [m for m in markers.all() if any(m in r["row"] for r in rows)]
        if hits:
            found[table] = hits
    return found


async def audit_trail(pool: asyncpg.Pool, case_id: str) -> list[tuple[Any, ...]]:
    rows = await pool.fetch(
        "SELECT seq, occurred_at, role, action, rule_id, status_after FROM case_events "
        "WHERE case_id = $1 ORDER BY seq",
        case_id,
    )
    return [tuple(r) for r in rows]


async def money(pool: asyncpg.Pool, case_id: str) -> list[tuple[Any, ...]]:
    rows = await pool.fetch(
        "SELECT * FROM money_movements WHERE case_id = $1 ORDER BY idempotency_key", case_id
    )
    return [tuple(r) for r in rows]


async def test_erasure_pseudonymises_the_ledger_destroys_the_data_key_and_keeps_money(
    api: httpx.AsyncClient, dev_env: WorkflowEnvironment, pool: asyncpg.Pool
) -> None:  # R21, R23
    markers = Markers.fresh()
    case_id = await a_refunded_case(api, dev_env, markers)
    bystander = f"return-someone-else-{uuid.uuid4().hex[:8]}"
    await pool.execute(
        "INSERT INTO data_keys (scope, master_key_id, wrapped_key) VALUES ($1, 'k1', $2)",
        bystander,
        b"wrapped",
    )
    sealed = await _first_payload(dev_env, case_id)
    codec = dev_env.client.data_converter.payload_codec
    assert codec is not None
    assert markers.customer_id.encode() in (await codec.decode([sealed]))[0].data
    refused = await api.post("/cases", json=opening(markers) | {"paid": "lots"},
                             headers=as_role("service"))  # fmt: skip
    assert refused.status_code == 422
    note = {"note_id": "n-1", "body": f"customer called: {markers.staff_note}"}
    noted = await api.post(f"/cases/{case_id}/notes", json=note,
                           headers=as_role("agent", "agent-ann"))  # fmt: skip
    assert noted.status_code == 201, noted.text
    tracked = "SELECT count(*) FROM case_tracking_numbers WHERE case_id = $1"
    assert await pool.fetchval(tracked, case_id) == 1  # its keyed hash, never the number
    before = await where_found(pool, markers)
    assert set(before) >= {"cases", "case_events", "case_requests", "refused_inputs",
                           "notifications", "surveys", "scans", "unmatched_scans",
                           "case_notes"}, before  # fmt: skip
    trail, paid = await audit_trail(pool, case_id), await money(pool, case_id)
    assert [m[3] for m in paid if m[2] == "refund"] == [5990]

    erased = await api.post(f"/customers/{markers.customer_id}/erasure",
                            headers=as_role("privacy", "dpo-dana"))  # fmt: skip

    assert erased.status_code == 200, erased.text
    assert erased.json() == {"cases": [case_id], "data_keys_destroyed": 1}
    assert await where_found(pool, markers) == {}
    assert await pool.fetchval(tracked, case_id) == 0
    # The note stays in the trail under its author, its words removed.
    [kept_note] = await pool.fetch(
        "SELECT author, body, redacted_at FROM case_notes WHERE case_id = $1", case_id
    )
    assert (kept_note["author"], kept_note["body"]) == (
        "agent-ann", "[erased on the customer's request]",
    )  # fmt: skip
    assert kept_note["redacted_at"] is not None
    # The audit trail keeps its rows, actions and times, and records the erasure itself.
    after = await audit_trail(pool, case_id)
    assert after[:-1] == trail
    assert after[-1][2:4] == ("privacy", "customer_erased")
    assert await money(pool, case_id) == paid
    pseudonym = await pool.fetchval("SELECT customer_id FROM cases WHERE case_id = $1", case_id)
    assert pseudonym.startswith("erased-")
    customer_rows = await pool.fetch(
        "SELECT actor FROM case_events WHERE case_id = $1 AND role = 'customer'", case_id
    )
    assert {r["actor"] for r in customer_rows} == {pseudonym}
    # The API process (its codec server) stops opening the case's payloads at once.
    with pytest.raises(ErasedDataError):
        await codec.decode([sealed])
    keys = {
        r["scope"]: (r["wrapped_key"], r["destroyed_at"] is not None)
        for r in await pool.fetch(
            "SELECT * FROM data_keys WHERE scope = ANY($1)", [case_id, bystander]
        )
    }
    assert keys == {case_id: (None, True), bystander: (b"wrapped", False)}
    customer = await pool.fetchval(
        "SELECT request->'customer' FROM case_requests WHERE case_id = $1", case_id
    )
    assert customer == {"customer_id": pseudonym, "time_zone": "UTC"}
    # Its payloads unreadable, the case answers 410 rather than fail to decode.
    gone = await read(api, case_id, "agent")
    assert gone.status_code == 410
    assert "erased" in gone.json()["detail"]
    # Nothing more reaches it; before, each of these answered 500 and the scan was lost.
    news = await api.post(f"/cases/{case_id}/dispute", headers=as_role("service"),
                          json={"event_id": "dsp-late", "reason": "too late"})  # fmt: skip
    ruling = await api.post(f"/cases/{case_id}/decision", headers=as_role("agent"),
                            json={"action_id": "d-late", "approve": True})  # fmt: skip
    scan = {"barcode": case_id, "scan_id": f"late-{case_id}", "event": "parcel_received",
            "station": "DOCK-9", "scanned_at": datetime.now(UTC).isoformat()}  # fmt: skip
    scanned = await api.post("/scans", json={"scans": [scan]}, headers=as_role("warehouse"))
    assert (news.status_code, ruling.status_code, scanned.status_code) == (410, 410, 404)
    kept = await pool.fetchval(
        "SELECT problem FROM unmatched_scans WHERE scan_id = $1", scan["scan_id"]
    )
    assert "erased" in kept


async def test_an_erased_case_answers_410_to_its_request_again_and_404_to_the_arbiter(
    api: httpx.AsyncClient, dev_env: WorkflowEnvironment, pool: asyncpg.Pool
) -> None:  # R2, R19
    """Issue 16. Before: the opening request sent again was refused as "different details"
    (409) and kept in refused_inputs with the customer's real id; the request as stored
    (pseudonymised) answered 500 (its data key is gone); an arbiter reading the erased,
    never-disputed case got 410 where an unknown case gets 404."""
    markers = Markers.fresh()
    case_id = await a_refunded_case(api, dev_env, markers)
    erased = await api.post(f"/customers/{markers.customer_id}/erasure",
                            headers=as_role("privacy", "dpo-dana"))  # fmt: skip
    assert erased.status_code == 200, erased.text
    stored = await pool.fetchval("SELECT request FROM case_requests WHERE case_id = $1", case_id)
    service = as_role("service")

    resent = opening(markers) | {"order_id": stored["order_id"]}
    again = await api.post("/cases", json=resent, headers=service)
    stored.pop("received_at")
    as_stored = await api.post("/cases", json=stored, headers=service)

    assert (again.status_code, as_stored.status_code) == (410, 410), (again.text, as_stored.text)
    assert "erased" in again.json()["detail"]
    assert await where_found(pool, markers) == {}
    # The arbiter: the same 404 as for a case that never existed, for reading and ruling.
    unknown_id = f"return-O-{uuid.uuid4().hex[:10]}-1-r1"
    arbiter = as_role("arbiter")
    ruling = {"action_id": "ru-1", "favour_customer": True, "reason": "the photos show it"}
    for path, body in (("", None), ("/ruling", ruling)):
        answers = []
        for some_id in (case_id, unknown_id):
            url = f"/cases/{some_id}{path}"
            answer = await (api.get(url, headers=arbiter) if body is None
                            else api.post(url, json=body, headers=arbiter))  # fmt: skip
            answers.append((answer.status_code, answer.json()["detail"].replace(some_id, "ID")))
        assert answers[0] == answers[1] == (404, "case_id: no case 'ID'"), answers


async def _first_payload(env: WorkflowEnvironment, case_id: str) -> Payload:
    """The case's opening input as Temporal holds it (sealed)."""
    history = await env.client.workflow_service.get_workflow_execution_history(
        GetWorkflowExecutionHistoryRequest(
            namespace=env.client.namespace, execution=WorkflowExecution(workflow_id=case_id)
        )
    )
    started = history.history.events[0].workflow_execution_started_event_attributes
    return started.input.payloads[0]


async def test_a_second_erasure_changes_nothing(
    api: httpx.AsyncClient, dev_env: WorkflowEnvironment, pool: asyncpg.Pool
) -> None:  # R23
    markers = Markers.fresh()
    case_id = await a_refunded_case(api, dev_env, markers)
    dpo = as_role("privacy", "dpo-dana")
    first = await api.post(f"/customers/{markers.customer_id}/erasure", headers=dpo)
    assert first.status_code == 200, first.text
    tables = {t: await pool.fetch(f"SELECT t::text FROM {t} t ORDER BY 1") for t in PERSONAL_TABLES}

    again = await api.post(f"/customers/{markers.customer_id}/erasure", headers=dpo)

    assert (again.status_code, again.json()) == (200, {"cases": [], "data_keys_destroyed": 0})
    for table, rows in tables.items():
        assert await pool.fetch(f"SELECT t::text FROM {table} t ORDER BY 1") == rows
    assert [a[3] for a in await audit_trail(pool, case_id)].count("customer_erased") == 1


async def test_erasure_waits_while_a_case_is_open_and_names_it(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    markers = Markers.fresh()
    opened = await api.post("/cases", json=opening(markers, reason=Reason.CHANGED_MIND),
                            headers=as_role("service"))  # fmt: skip
    case_id = opened.json()["case_id"]
    await status_is(api, case_id, "awaiting_ship_back")

    refused = await api.post(f"/customers/{markers.customer_id}/erasure",
                             headers=as_role("privacy", "dpo-dana"))  # fmt: skip

    assert refused.status_code == 409
    body = refused.json()
    assert case_id in body["detail"]
    assert body["errors"][0]["field"] == "customer_id"
    assert markers.customer_id in (await where_found(pool, markers))["cases"]
    assert "customer_erased" not in [a[3] for a in await audit_trail(pool, case_id)]


async def test_erasure_waits_for_the_dispute_window_of_a_rejected_case(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:  # R19
    markers = Markers.fresh()
    service = as_role("service")
    case_id = (await api.post("/cases", json=opening(markers), headers=service)).json()["case_id"]
    await status_is(api, case_id, "awaiting_evidence")
    evidence = {"event_id": "ev-1", "photos": [markers.photo]}
    await api.post(f"/cases/{case_id}/evidence", json=evidence, headers=service)
    await status_is(api, case_id, "under_review")
    rejection = {"action_id": "d-1", "approve": False, "reason": markers.agent_reason}
    await api.post(f"/cases/{case_id}/decision", json=rejection, headers=as_role("agent"))
    await status_is(api, case_id, "rejected")

    # Closed in the ledger, yet the customer may still dispute it: the workflow runs on.
    refused = await api.post(f"/customers/{markers.customer_id}/erasure",
                             headers=as_role("privacy", "dpo-dana"))  # fmt: skip

    assert refused.status_code == 409
    assert f"case {case_id} has its dispute window (R19) running" in refused.json()["detail"]
    assert markers.agent_reason in (await where_found(pool, markers))["case_events"]


async def test_only_the_privacy_role_erases(api: httpx.AsyncClient) -> None:
    for token in ("service", "agent", "arbiter", "warehouse"):
        answer = await api.post("/customers/cust-7/erasure", headers=as_role(token))
        assert answer.status_code == 403, token


async def test_the_ledger_stays_append_only_outside_redaction(pool: asyncpg.Pool) -> None:  # R23
    case_id = f"return-append-{uuid.uuid4().hex[:8]}"
    await pool.execute(
        "INSERT INTO case_events (case_id, seq, occurred_at, actor, role, action, "
        "status_after) VALUES ($1, 1, now(), 'cust-x', 'customer', 'case_opened', 'opened')",
        case_id,
    )
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await pool.execute("UPDATE case_events SET actor = 'x' WHERE case_id = $1", case_id)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT set_config('aftersales.redacting', 'on', true)")
        # Even while redacting, what happened, when, and in what order stays.
        for change in ("action = 'refunded'", "occurred_at = now() - interval '1 day'",
                       "seq = 2"):  # fmt: skip
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                async with conn.transaction():  # a savepoint, so the next change is tried
                    await conn.execute(
                        f"UPDATE case_events SET {change} WHERE case_id = $1",
                        case_id,
                    )
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await pool.execute("DELETE FROM case_events WHERE case_id = $1", case_id)


async def test_retention_deletes_old_refused_input_and_redacts_old_free_text(
    pool: asyncpg.Pool,
) -> None:
    tag = uuid.uuid4().hex[:8]
    old, recent = f"return-old-{tag}", f"return-recent-{tag}"
    for case_id, closed_days_ago in ((old, 800), (recent, 10)):
        await a_closed_case_in_the_ledger(pool, case_id, closed_days_ago, words=f"words-{tag}")
    await pool.execute(
        "INSERT INTO refused_inputs (source, operation, payload, errors, received_at) VALUES "
        "('api', 'POST /cases', $1, '{}', now() - interval '31 days'), "
        "('api', 'POST /cases', $2, '{}', now() - interval '29 days')",
        f"old-{tag}",
        f"recent-{tag}",
    )

    first = await apply_retention(pool)
    again = await apply_retention(pool)

    kept = await pool.fetch("SELECT payload FROM refused_inputs WHERE payload LIKE $1", f"%{tag}")
    assert [r["payload"] for r in kept] == [f"recent-{tag}"]
    assert first.refused_inputs_deleted >= 1
    assert first.cases_redacted >= 1
    assert (again.refused_inputs_deleted, again.cases_redacted) == (0, 0)
    rows = {
        r["case_id"]: (r["reason"], r["details"])
        for r in await pool.fetch(
            "SELECT case_id, reason, details FROM case_events WHERE case_id = ANY($1)",
            [old, recent],
        )
    }
    assert rows[old] == ("[removed after retention]", {"photos": 1, "redacted": True})
    assert rows[recent] == (f"words-{tag}", {"photos": [f"https://p/{tag}"]})


async def a_closed_case_in_the_ledger(
    pool: asyncpg.Pool, case_id: str, closed_days_ago: int, *, words: str
) -> None:
    closed = datetime.now(UTC) - timedelta(days=closed_days_ago)
    await pool.execute(
        """INSERT INTO cases (case_id, kind, reason, channel, order_id, line_id, request_id,
               sku, category, customer_id, status, currency, paid_minor, refund_limit_minor,
               refunded_minor, policy_version, waiting_for, decision_reason, opened_at,
               closed_at, last_seq, updated_at)
           VALUES ($1, 'return', 'changed_mind', 'web', 'O', '1', 'r1', 'SKU', 'general',
               'cust-r', 'withdrawn', 'EUR', 100, 100, 0, 'v', 'nothing', $2, $3, $3, 1, $3)""",
        case_id,
        words,
        closed,
    )
    await pool.execute(
        """INSERT INTO case_events (case_id, seq, occurred_at, actor, role, action, reason,
               status_after, details)
           VALUES ($1, 1, $2, 'cust-r', 'customer', 'withdrawn', $3, 'withdrawn', $4)""",
        case_id,
        closed,
        words,
        {"photos": [f"https://p/{words.removeprefix('words-')}"]},
    )


async def test_each_role_reads_what_it_needs_and_the_arbiter_only_disputed_cases(
    api: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:  # R19, R20
    markers = Markers.fresh()
    service = as_role("service")
    case_id = (await api.post("/cases", json=opening(markers), headers=service)).json()["case_id"]
    await status_is(api, case_id, "awaiting_evidence")
    evidence = {"event_id": "ev-1", "photos": [markers.photo], "note": markers.note}
    await api.post(f"/cases/{case_id}/evidence", json=evidence, headers=service)
    await api.post(f"/cases/{case_id}/complaint", json={"event_id": "c-1",
                   "summary": markers.complaint}, headers=service)  # fmt: skip
    await status_is(api, case_id, "under_review")
    staff = await eventually(
        lambda: read(api, case_id, "agent"), lambda r: r.json()["complaints_received"] == 1
    )
    # The workflow's own query answers the view, never the durable state.
    queried = await dev_env.client.get_workflow_handle(case_id).query("state", result_type=dict)

    for answer in (staff.text, str(queried)):
        assert not [m for m in [*markers.all(), markers.time_zone] if m in answer], answer
        assert "inbox" not in answer
        assert "seen_messages" not in answer
    assert (staff.json()["photos_received"], staff.json()["escalation"]["level"]) == (
        1, "supervisor",
    )  # fmt: skip
    shop = (await read(api, case_id, "service")).json()
    assert shop["waiting_for"] == staff.json()["waiting_for"]
    assert not {"escalation", "assigned_agent", "decided_by", "receipts"} & set(shop)
    assert (await read(api, case_id, "arbiter")).status_code == 404

    rejection = {"action_id": "d-1", "approve": False, "reason": markers.agent_reason}
    rejected = await api.post(f"/cases/{case_id}/decision", json=rejection,
                              headers=as_role("agent", "agent-ann"))  # fmt: skip
    # An Update's answer is the view too.
    assert rejected.json()["status"] == "rejected"
    assert not {"inbox", "seen_messages", "evidence", "complaints"} & set(rejected.json())
    # R20: the shop tells the customer why, in the agent's words.
    assert markers.agent_reason in (await read(api, case_id, "service")).json()["decision_reason"]
    assert (await read(api, case_id, "arbiter")).status_code == 404
    ruling = {"action_id": "ru-1", "favour_customer": True, "reason": "the photos show it"}
    too_soon = await api.post(f"/cases/{case_id}/ruling", json=ruling, headers=as_role("arbiter"))
    assert too_soon.status_code == 404
    dispute = {"event_id": "dsp-1", "reason": "the crack was there on delivery"}
    await api.post(f"/cases/{case_id}/dispute", json=dispute, headers=service)
    await status_is(api, case_id, "in_arbitration")
    arbiter = await read(api, case_id, "arbiter")
    assert arbiter.status_code == 200
    assert arbiter.json()["dispute"] == {"reason": "the crack was there on delivery"}
