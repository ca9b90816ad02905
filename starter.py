"""Command line for backend services and people: open cases, send scans, read state.

Prints JSON. Exit codes: 0 done, 2 refused input (the message names the field and the
rule), 3 unknown case, 4 not authenticated or not allowed, 1 anything else (e.g. Temporal
or PostgreSQL unreachable). `token` and `client` manage local identities (no services)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from pydantic import BaseModel, ValidationError

from activities.analytics_store import DELIVERY_CSV_COLUMNS, read_delivery_csv
from activities.policy_file import PolicyFileError, load_policy_file
from domain.analytics import MAX_DELIVERY_ROWS, Report, ReportFilters
from domain.case import OpenCaseRequest, OperatorAction, Role, ShippedBack, WarehouseScan
from domain.state import CaseMessage
from infra.alarm_schedule import ensure_batch_alarm_schedule
from infra.case_errors import RefusedDecisionError, RefusedInputError, UnknownCaseError
from infra.case_messages import (
    AUTHORITY,
    SIGNAL_BY_NAME,
    UPDATE_BY_NAME,
    SignalHandler,
    model_of,
)
from infra.database import ForeignSchemaError, create_pool, migrate
from infra.gateway import CaseGateway
from infra.report_csv import Section, report_csv
from infra.search_attribute_setup import register_search_attributes
from infra.security.data_converter import key_ring
from infra.security.data_keys import rewrap
from infra.security.edge_identity import authenticator, grant_signer, mint_dev_token
from infra.security.grants import GrantingInterceptor
from infra.security.identity import (
    MACHINE_ROLES,
    STAFF_TOKEN_ROLES,
    Caller,
    MachineClients,
    Unauthenticated,
    acting_role,
)
from infra.security.privacy import apply_retention
from infra.settings import ConfigurationError, Settings, load_settings
from infra.temporal_client import connect, connect_for_operations
from workflows import search_attributes
from workflows.case_handlers import CaseHandlers

EXIT_FAILURE, EXIT_REFUSED, EXIT_UNKNOWN_CASE, EXIT_UNAUTHORISED = 1, 2, 3, 4


_MACHINE_TOKEN_HELP = "the sending machine's credential (role {}); nothing is sent unproven"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="starter.py", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    _add_intake_commands(commands.add_parser)
    _add_message_commands(commands.add_parser)
    _add_identity_commands(commands.add_parser)
    _add_operations_commands(commands.add_parser)
    _add_data_commands(commands.add_parser)
    return parser


# `add_parser` of the command line's subcommands.
AddCommand = Callable[..., argparse.ArgumentParser]


def _add_intake_commands(add_command: AddCommand) -> None:
    open_ = add_command("open", help="open a case (idempotent, R2)")
    open_.add_argument("--json", dest="json_file", help="request JSON file, or - for stdin")
    open_.add_argument("--order")
    open_.add_argument("--line")
    open_.add_argument("--request", help="the caller's request id")
    open_.add_argument("--kind", default="return")
    open_.add_argument("--reason", default="changed_mind")
    open_.add_argument("--channel", default="web")
    open_.add_argument("--sku")
    open_.add_argument("--category", default="general")
    open_.add_argument("--batch", help="the production batch (lot) of the unit (R24)")
    open_.add_argument("--quantity", type=int, default=1)
    open_.add_argument("--paid-minor", type=int, help="amount paid, in minor units (cents)")
    open_.add_argument("--currency")
    open_.add_argument("--delivered-at", help="ISO 8601 with offset")
    open_.add_argument("--requested-at", help="ISO 8601 with offset; default now")
    open_.add_argument("--customer")
    open_.add_argument("--time-zone", default="UTC", help="IANA name, e.g. Europe/Berlin")
    open_.add_argument("--token", required=True, help=_MACHINE_TOKEN_HELP.format("service"))

    scan = add_command("scan", help="a warehouse scan (R26)")
    scan.add_argument("barcode", help="the return label's barcode: the case id")
    scan.add_argument("--scan-id", required=True)
    scan.add_argument("--event", required=True, help="parcel_received | inspected")
    scan.add_argument("--station", required=True)
    scan.add_argument("--grade", help="resellable | refurbish | damaged | wrong_item")
    scan.add_argument("--photo", action="append", default=[], dest="photos")
    scan.add_argument("--scanned-at", help="ISO 8601 with offset; default now")
    scan.add_argument("--token", required=True, help=_MACHINE_TOKEN_HELP.format("warehouse"))


def _add_message_commands(add_command: AddCommand) -> None:
    shipped = add_command("shipped", help="the customer shipped the parcel back (R12)")
    shipped.add_argument("case_id")
    shipped.add_argument("--event-id", required=True)
    shipped.add_argument("--carrier", required=True)
    shipped.add_argument("--tracking-number", required=True)
    shipped.add_argument("--shipped-at", help="ISO 8601 with offset; default now")
    shipped.add_argument("--token", required=True, help=_MACHINE_TOKEN_HELP.format("service"))

    tell = add_command("tell", help="news for a case (a signal), from JSON")
    tell.add_argument("case_id")
    tell.add_argument("signal", choices=sorted(SIGNAL_BY_NAME))
    tell.add_argument("--json", dest="json_payload", required=True, help="JSON, or - for stdin")
    tell.add_argument(
        "--token", required=True, help=_MACHINE_TOKEN_HELP.format("service; warehouse for scans")
    )

    decide = add_command(
        "decide", help="a decision on a case (a validated update), from JSON; prints the case"
    )
    decide.add_argument("case_id")
    decide.add_argument("update", choices=sorted(UPDATE_BY_NAME))
    decide.add_argument("--json", dest="json_payload", required=True, help="JSON, or - for stdin")
    decide.add_argument(
        "--token", required=True,
        help="your staff token (or a service's credential): the actor and role come from it",
    )  # fmt: skip


def _add_identity_commands(add_command: AddCommand) -> None:
    token = add_command("token", help="a staff token signed with the local dev key")
    token.add_argument("--name", required=True, help="the staff id (the ledger's actor)")
    token.add_argument("--role", required=True, action="append", dest="roles",
                       choices=sorted(r.value for r in STAFF_TOKEN_ROLES))  # fmt: skip
    token.add_argument("--hours", type=float, default=8.0, help="lifetime; default 8")

    client = add_command("client", help="machine credentials (services, scanners)")
    client_commands = client.add_subparsers(dest="client_command", required=True)
    add = client_commands.add_parser("add", help="a new credential; prints it once")
    add.add_argument("--name", required=True, help="e.g. dock-1")
    add.add_argument("--role", required=True, choices=sorted(r.value for r in MACHINE_ROLES))
    add.add_argument("--carrier", action="append", dest="carriers", default=[],
                     help="a carrier client: a carrier whose claims it answers (R15), as "
                     "orders name it; repeat for several")  # fmt: skip
    revoke = client_commands.add_parser("revoke", help="the credential stops working at once")
    revoke.add_argument("--name", required=True)


def _add_operations_commands(add_command: AddCommand) -> None:
    status = add_command("status", help="a case's working view (no inbox, no personal free text)")
    status.add_argument("case_id")

    add_command(
        "setup",
        help="set-up work, idempotent: migrations, the cases' search attributes, the R24 "
        "batch alarm's schedule (the worker only warns when the schedule is missing)",
    )

    add_command(
        "rewrap-keys",
        help="wrap every case's data key with the newest codec master key; then an older "
        "master key may leave AFTERSALES_CODEC_KEYS (docs/privacy.md)",
    )

    add_command(
        "retention",
        help="apply the retention rule (docs/privacy.md): delete old refused input, remove "
        "old cases' free text; run it daily",
    )


def _add_data_commands(add_command: AddCommand) -> None:
    """Deliveries in (R24); the report and the case list out."""
    deliveries = add_command(
        "import-deliveries",
        help="units delivered per SKU, batch and day from CSV (R24): header "
        f"{','.join(DELIVERY_CSV_COLUMNS)}; idempotent; bad rows are kept for a person and "
        "named (exit 2), the good ones stored",
    )
    deliveries.add_argument("csv_file", help="the CSV file, or - for stdin")
    deliveries.add_argument("--token", required=True, help=_MACHINE_TOKEN_HELP.format("service"))

    report = add_command(
        "report", help="R24's report as JSON, or one section as CSV (--csv SECTION)"
    )
    report.add_argument("--from", dest="from_day", help="first day, YYYY-MM-DD (UTC)")
    report.add_argument("--to", dest="to_day", help="last day, YYYY-MM-DD (UTC), inclusive")
    for name in ("category", "sku", "batch", "channel", "kind", "reason"):
        report.add_argument(f"--{name}")
    report.add_argument("--csv", choices=sorted(s.value for s in Section), dest="section")

    list_ = add_command("list", help="cases, newest first")
    list_.add_argument("--status", help="only cases in this status")
    list_.add_argument("--limit", type=int, default=50)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _open_payload(args: argparse.Namespace) -> str:
    if args.json_file:
        if args.json_file == "-":
            return sys.stdin.read()
        with open(args.json_file, encoding="utf-8") as file:
            return file.read()
    request = _drop_none(
        {
            "order_id": args.order,
            "line_id": args.line,
            "request_id": args.request,
            "kind": args.kind,
            "reason": args.reason,
            "channel": args.channel,
            "sku": args.sku,
            "category": args.category,
            "batch": args.batch,
            "quantity": args.quantity,
            "paid": {"amount_minor": args.paid_minor, "currency": args.currency},
            "delivered_at": args.delivered_at,
            "requested_at": args.requested_at,
            "customer": {"customer_id": args.customer, "time_zone": args.time_zone},
        }
    )
    return json.dumps(request)


def _read(payload: str) -> str:
    return sys.stdin.read() if payload == "-" else payload


def _parse_open(payload: str) -> OpenCaseRequest:
    data = json.loads(payload)
    if isinstance(data, dict):
        data.setdefault("requested_at", _now())
    return OpenCaseRequest.model_validate(data)


def _print(value: BaseModel | Sequence[BaseModel]) -> None:
    if isinstance(value, BaseModel):
        print(value.model_dump_json(indent=2))
    else:
        print(json.dumps([v.model_dump(mode="json") for v in value], indent=2))


def _identity(args: argparse.Namespace, settings: Settings) -> int:
    """`token` and `client`: local files only, no Temporal or PostgreSQL."""
    if args.command == "token":
        roles = [Role(role) for role in args.roles]
        lifetime = timedelta(hours=args.hours)
        print(mint_dev_token(settings, actor=args.name, roles=roles, lifetime=lifetime))
        return 0
    clients = MachineClients(settings.clients_file)
    try:
        if args.client_command == "add":
            print(clients.add(args.name, Role(args.role), args.carriers))
        else:
            clients.revoke(args.name)
            print(json.dumps({"revoked": args.name}))
    except (ValueError, KeyError) as error:
        print(f"refused: {error.args[0]}", file=sys.stderr)
        return EXIT_REFUSED
    return 0


def _proven(args: argparse.Namespace, settings: Settings, *roles: Role) -> Caller:
    """As at the API, every way in proves who sends (R23): the credential's holder acting
    in one of `roles`, else Unauthenticated."""
    principal = authenticator(settings).authenticate(args.token)
    role = acting_role(principal, roles)
    if role is None:
        allowed = ", ".join(r.value for r in roles)
        raise Unauthenticated(f"{principal.actor} may not send {args.command} ({allowed})")
    return Caller(actor=principal.actor, role=role)


def _scan_by(scanner: Caller, payload: str) -> WarehouseScan:
    """A scan names the proven scanner that sent it, never what its payload claims."""
    data = json.loads(payload)
    if isinstance(data, dict) and "scanned_by" in data:
        raise Unauthenticated("scanned_by comes from --token, not from the payload")
    return WarehouseScan.model_validate(
        data | {"scanned_by": scanner.actor} if isinstance(data, dict) else data
    )


def _decision(
    args: argparse.Namespace, settings: Settings, payload: str
) -> tuple[CaseMessage, Caller]:
    """The decision as the token's holder takes it: actor and role from the proof
    (R23); a payload naming someone else is refused."""
    principal = authenticator(settings).authenticate(args.token)
    update = UPDATE_BY_NAME[args.update]
    role = acting_role(principal, AUTHORITY[update])
    if role is None:
        raise Unauthenticated(f"{principal.actor} may not send {args.update}")
    caller = Caller(actor=principal.actor, role=role)
    model = model_of(update)
    data = json.loads(payload)
    if issubclass(model, OperatorAction) and isinstance(data, dict):
        proven = {"actor": caller.actor, "role": caller.role.value}
        if any(data.get(field, value) != value for field, value in proven.items()):
            raise Unauthenticated("actor and role come from --token, not from the payload")
        data |= proven
    return model.model_validate(data), caller


async def run(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    settings = load_settings()
    if args.command in ("token", "client"):
        return _identity(args, settings)
    if args.command == "setup":
        return await _setup(settings)
    pool = await create_pool(settings.effective_database_url, max_size=2)
    client = await connect(settings, pool, [GrantingInterceptor(grant_signer(settings))])
    gateway = CaseGateway(client, pool, settings.task_queue, load_policy_file(settings.policy_file))
    sent = _Sent()
    try:
        return await _command(args, settings, gateway, pool, sent)
    except (
        ValidationError,
        json.JSONDecodeError,
        RefusedInputError,
        RefusedDecisionError,
    ) as error:
        message = _refusal(error)
        await gateway.record_refused_input(
            source="starter", operation=args.command, payload=sent.payload, errors=message
        )
        print(f"refused: {message}", file=sys.stderr)
        return EXIT_REFUSED
    except UnknownCaseError as error:
        print(f"unknown case: {error}", file=sys.stderr)
        return EXIT_UNKNOWN_CASE
    except Unauthenticated as error:
        print(f"not allowed: {error}", file=sys.stderr)
        return EXIT_UNAUTHORISED
    finally:
        await pool.close()


@dataclass
class _Sent:
    """What a command sent, as text: kept with the reason if it is refused."""

    payload: str = ""


def _refusal(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return _describe_errors(error.errors())
    if isinstance(error, json.JSONDecodeError):
        return f"input: {error}"
    return str(error)


def _describe_errors(errors: Sequence[Mapping[str, Any]]) -> str:
    """Pydantic's errors as one line, each naming its field."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in errors)


async def _command(
    args: argparse.Namespace,
    settings: Settings,
    gateway: CaseGateway,
    pool: asyncpg.Pool,
    sent: _Sent,
) -> int:
    """One command that reaches Temporal or PostgreSQL; 0 when done."""
    match args.command:
        case "open":
            _proven(args, settings, Role.SERVICE)
            sent.payload = _open_payload(args)
            opened = await gateway.open_case(gateway.received_now(_parse_open(sent.payload)))
            _print(opened.view)
        case "scan":
            scanner = _proven(args, settings, Role.WAREHOUSE)
            sent.payload = _scan_payload(args)
            await gateway.scan(args.barcode, _scan_by(scanner, sent.payload))
            print(json.dumps({"accepted": True, "scan_id": args.scan_id}))
        case "shipped":
            _proven(args, settings, Role.SERVICE)
            sent.payload = _shipped_payload(args)
            notice = ShippedBack.model_validate_json(sent.payload)
            await gateway.shipped_back(args.case_id, notice)
            print(json.dumps({"accepted": True, "event_id": args.event_id}))
        case "tell":
            sent.payload = _read(args.json_payload)
            signal, news = _news(args, settings, sent.payload)
            await gateway.tell(args.case_id, signal, news)
            print(json.dumps({"case_id": args.case_id, "accepted": args.signal}))
        case "decide":
            sent.payload = _read(args.json_payload)
            decision, caller = _decision(args, settings, sent.payload)
            update = UPDATE_BY_NAME[args.update]
            _print(await gateway.decide(args.case_id, update, decision, caller))
        case "import-deliveries":
            _proven(args, settings, Role.SERVICE)
            return await _import_deliveries(gateway, args.csv_file)
        case "report":
            sent.payload = json.dumps(_drop_none(
                {name: getattr(args, name) for name in ReportFilters.model_fields}
            ))  # fmt: skip
            _print_report(await gateway.report(ReportFilters.model_validate_json(sent.payload)),
                          args.section)  # fmt: skip
        case _:
            await _read_or_maintain(args, settings, gateway, pool)
    return 0


async def _read_or_maintain(
    args: argparse.Namespace, settings: Settings, gateway: CaseGateway, pool: asyncpg.Pool
) -> None:
    match args.command:
        case "status":
            _print(await gateway.status(args.case_id))
        case "list":
            _print(await gateway.list_cases(status=args.status, limit=args.limit))
        case "retention":
            _print(await apply_retention(pool))
        case "rewrap-keys":
            _print(await rewrap(pool, key_ring(settings)))


def _news(
    args: argparse.Namespace, settings: Settings, payload: str
) -> tuple[SignalHandler[Any], BaseModel]:
    """The signal and its message; a scan names the proven scanner (R23)."""
    signal = SIGNAL_BY_NAME[args.signal]
    if signal is CaseHandlers.warehouse_scan:
        return signal, _scan_by(_proven(args, settings, Role.WAREHOUSE), payload)
    _proven(args, settings, Role.SERVICE)
    return signal, model_of(signal).model_validate_json(payload)


def _scan_payload(args: argparse.Namespace) -> str:
    return json.dumps(_drop_none({
        "scan_id": args.scan_id, "event": args.event, "station": args.station,
        "grade": args.grade, "photos": args.photos, "scanned_at": args.scanned_at or _now(),
    }))  # fmt: skip


def _shipped_payload(args: argparse.Namespace) -> str:
    return json.dumps({
        "event_id": args.event_id, "carrier": args.carrier,
        "tracking_number": args.tracking_number, "shipped_at": args.shipped_at or _now(),
    })  # fmt: skip


def _print_report(found: Report, section: str | None) -> None:
    if section:
        print(report_csv(found, Section(section)), end="")
    else:
        _print(found)


async def _setup(settings: Settings) -> int:
    pool = await create_pool(settings.effective_database_url, max_size=2)
    try:
        await migrate(pool)
    finally:
        await pool.close()
    client = await connect_for_operations(settings)
    await register_search_attributes(client)
    created = await ensure_batch_alarm_schedule(client, settings.task_queue)
    summary = {
        "migrations": "applied",
        "search_attributes": [key.name for key in search_attributes.ALL],
        "batch_alarm_schedule": "created" if created else "already registered",
    }
    print(json.dumps(summary, indent=2))
    return 0


def _file_text(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    with open(path, encoding="utf-8") as file:
        return file.read()


async def _import_deliveries(gateway: CaseGateway, csv_file: str) -> int:
    """Good rows stored (in reports of MAX_DELIVERY_ROWS), each bad row kept in
    refused_inputs with its line and field; exit 2 if any was refused."""
    good, refused = read_delivery_csv(_file_text(csv_file))
    received = changed = 0
    for start in range(0, len(good), MAX_DELIVERY_ROWS):
        outcome = await gateway.analytics.record_deliveries(good[start : start + MAX_DELIVERY_ROWS])
        received, changed = received + outcome.received, changed + outcome.changed
    for bad in refused:
        await gateway.record_refused_input(
            source="starter",
            operation=f"import-deliveries line {bad.line}",
            payload=bad.row,
            errors=f"line {bad.line}: {bad.errors}",
        )
    summary = {"received": received, "changed": changed,
               "refused": [bad.model_dump() for bad in refused]}  # fmt: skip
    print(json.dumps(summary, indent=2))
    return EXIT_REFUSED if refused else 0


def main() -> None:
    try:
        sys.exit(asyncio.run(run(sys.argv[1:])))
    except (ConfigurationError, PolicyFileError, ForeignSchemaError) as error:
        sys.exit(f"starter: {error}")
    except OSError as error:
        print(f"starter: {error}", file=sys.stderr)
        sys.exit(EXIT_FAILURE)


if __name__ == "__main__":
    main()
