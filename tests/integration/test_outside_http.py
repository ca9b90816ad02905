"""The HTTP adapters of the outside systems against a merchant's service on loopback
(tests/merchant_service.py): every request signed and checked, the same key answered
once, each refusal mapped to OutsideRefusal (never retried), no answer to NoAnswerYet
(retried by Temporal), anything else to UnknownAnswer (kept for a person). Then by
configuration alone (infra/outside/systems.py), and through the real activities."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
import yaml
from temporalio.exceptions import ApplicationError

from activities.notifications import CustomerMessage, LoggingNotifier, Template
from activities.outside import NoType, OutsideRefusal, UnknownAnswer
from activities.payments import JournaledSandboxPaymentProvider, PaymentActivities, RefundOrder
from activities.warehouse import SandboxWarehouse
from domain.money import Money
from infra.outside.adapters import HttpCarrier, HttpNotifier, HttpPaymentProvider, HttpWarehouse
from infra.outside.service import Endpoint, NoAnswerYet
from infra.outside.signing import BadSignature, signed_headers, verify
from infra.outside.systems import outside_systems
from infra.settings import ConfigurationError, OutsideSystem, load_settings
from tests.conftest import a_request
from tests.merchant_service import ROUTES, SECRET, MerchantService, merchant_service

EUR_40 = Money(amount_minor=4_000, currency="EUR")


def endpoint(url: str, secret: str = SECRET, timeout: float = 5.0) -> Endpoint:
    return Endpoint(url, secret.encode(), timedelta(seconds=timeout))


@pytest.fixture
async def merchant() -> AsyncIterator[MerchantService]:
    async with merchant_service() as service:
        yield service


CONTRACTS = Path(__file__).resolve().parents[2] / "docs" / "outside"


def test_the_contracts_document_every_call_the_adapters_make_and_each_refusal() -> None:
    documented: set[tuple[str, str]] = set()
    for system in OutsideSystem:
        contract = yaml.safe_load((CONTRACTS / f"{system}.openapi.yaml").read_text())
        assert contract["openapi"] == "3.1.0"
        for path, operations in contract["paths"].items():
            for method, operation in operations.items():
                # Parameter names differ from the test service's; the shape is the path's.
                documented.add((method.upper(), _shape(path)))
                if method == "post":
                    assert "IdempotencyKey" in str(operation["parameters"]), path
                assert "Signature" in str(operation["parameters"]), path
                assert "Unavailable" in str(operation["responses"]), path
    assert documented == {(method, _shape(path)) for method, path in ROUTES}
    common = yaml.safe_load((CONTRACTS / "common.yaml").read_text())
    refused = common["components"]["schemas"]["Refused"]
    assert refused["properties"]["outcome"]["const"] == "refused"


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


# ---- signing ------------------------------------------------------------------------------


def test_a_signature_binds_method_path_timestamp_and_body_within_the_replay_window() -> None:
    now = datetime.now(UTC)
    secret = SECRET.encode()
    headers = signed_headers(secret, "POST", "/refunds", b'{"a":1}', now)
    verify(secret, "POST", "/refunds", headers, b'{"a":1}', now)  # as sent: accepted
    refused = [
        ("POST", "/refunds", b'{"a":2}', now, secret),  # another body
        ("POST", "/charges", b'{"a":1}', now, secret),  # another path
        ("GET", "/refunds", b'{"a":1}', now, secret),  # another method
        ("POST", "/refunds", b'{"a":1}', now, b"another secret"),
        ("POST", "/refunds", b'{"a":1}', now + timedelta(minutes=6), secret),  # replayed late
    ]
    for method, path, body, at, key in refused:
        with pytest.raises(BadSignature):
            verify(key, method, path, headers, body, at)


# ---- payments -----------------------------------------------------------------------------


async def test_r21_a_refund_is_signed_and_the_same_key_is_paid_once(
    merchant: MerchantService,
) -> None:
    payments = HttpPaymentProvider(endpoint(merchant.url))
    first = await payments.refund(idempotency_key="k:refund:1", case_id="c-1", amount=EUR_40)
    again = await payments.refund(idempotency_key="k:refund:1", case_id="c-1", amount=EUR_40)
    found = await payments.find(idempotency_key="k:refund:1")
    unknown = await payments.find(idempotency_key="k:refund:2")
    await payments.service.aclose()
    assert first == again == found == "merchant-refunds-k:refund:1"
    assert unknown is None  # 404: not paid
    assert merchant.booked["refunds"] == 1
    assert merchant.bad_signatures == 0
    assert merchant.requests[0][2] == {
        "case_id": "c-1",
        "amount": {"amount_minor": 4_000, "currency": "EUR"},
    }


async def test_a_request_signed_with_another_secret_is_refused_and_books_nothing(
    merchant: MerchantService,
) -> None:
    payments = HttpPaymentProvider(endpoint(merchant.url, secret="x" * 40))
    with pytest.raises(UnknownAnswer, match="HTTP 401"):
        await payments.refund(idempotency_key="k:refund:1", case_id="c-1", amount=EUR_40)
    await payments.service.aclose()
    assert merchant.bad_signatures == 1
    assert merchant.booked["refunds"] == 0


async def test_r21_a_declined_refund_is_a_refusal_and_its_key_may_be_paid_later(
    merchant: MerchantService,
) -> None:
    merchant.declined_cases.add("c-1")
    payments = HttpPaymentProvider(endpoint(merchant.url))
    with pytest.raises(OutsideRefusal) as declined:
        await payments.refund(idempotency_key="k:refund:1", case_id="c-1", amount=EUR_40)
    assert await payments.find(idempotency_key="k:refund:1") is None
    merchant.declined_cases.clear()
    paid = await payments.refund(idempotency_key="k:refund:1", case_id="c-1", amount=EUR_40)
    await payments.service.aclose()
    assert declined.value.reason == "card declined: insufficient funds"
    assert paid == "merchant-refunds-k:refund:1"
    assert merchant.booked["refunds"] == 1


@pytest.mark.parametrize(
    ("status", "body", "raised"),
    [
        (503, "{}", NoAnswerYet),
        (500, "oops", NoAnswerYet),
        (429, "{}", NoAnswerYet),
        (418, "{}", UnknownAnswer),
        (409, '{"outcome": "refused", "reason": "x"}', UnknownAnswer),  # a refusal is 422
        (200, '{"ref": "no such field"}', UnknownAnswer),
        (422, '{"outcome": "maybe"}', UnknownAnswer),
    ],
)
async def test_answers_outside_the_contract_are_retried_or_kept_never_taken_as_a_yes(
    merchant: MerchantService, status: int, body: str, raised: type[Exception]
) -> None:
    merchant.forced.append((status, body))
    payments = HttpPaymentProvider(endpoint(merchant.url))
    with pytest.raises(raised):
        await payments.charge(idempotency_key="k:charge:1", case_id="c-1", amount=EUR_40)
    await payments.service.aclose()
    assert merchant.booked["charges"] == 0


async def test_a_service_slower_than_the_timeout_is_no_answer_yet(
    merchant: MerchantService,
) -> None:
    merchant.delay_s = 1.0
    payments = HttpPaymentProvider(endpoint(merchant.url, timeout=0.2))
    with pytest.raises(NoAnswerYet, match="ReadTimeout"):
        await payments.refund(idempotency_key="k:refund:1", case_id="c-1", amount=EUR_40)
    await payments.service.aclose()


# ---- warehouse, carrier, messaging --------------------------------------------------------


async def test_r3_r22_the_warehouse_refuses_what_it_cannot_do(merchant: MerchantService) -> None:
    merchant.no_stock.add("SKU-9")
    merchant.shipped_orders.add("O-LEFT")
    warehouse = HttpWarehouse(endpoint(merchant.url))
    with pytest.raises(OutsideRefusal, match="no stock of SKU-9"):
        await warehouse.ship(idempotency_key="c:ship:1", sku="SKU-9", quantity=1)
    sent = await warehouse.ship(idempotency_key="c:ship:2", sku="SKU-1", quantity=2)
    sent_again = await warehouse.ship(idempotency_key="c:ship:2", sku="SKU-1", quantity=2)
    stock = (
        await warehouse.in_stock(sku="SKU-9", quantity=1),
        await warehouse.in_stock(sku="SKU-1", quantity=1),
    )
    cancelled = (
        await warehouse.cancel_shipment(order_id="O-LEFT", line_id="1"),
        await warehouse.cancel_shipment(order_id="O-HERE", line_id="1"),
    )
    await warehouse.service.aclose()
    assert sent == sent_again == "merchant-shipments-c:ship:2"
    assert merchant.booked["shipments"] == 1
    assert stock == (False, True)
    assert cancelled == (False, True)  # R3: already left, or stopped


async def test_r15_r4_the_carrier_rejects_a_claim_and_refuses_an_intercept(
    merchant: MerchantService,
) -> None:
    merchant.rejecting_carriers.add("DHL")
    merchant.refusing_intercepts.add("SF")
    carrier = HttpCarrier(endpoint(merchant.url))
    with pytest.raises(OutsideRefusal, match="not liable"):
        await carrier.file_claim(claim_id="claim-1", carrier="DHL", amount=EUR_40)
    filed = await carrier.file_claim(claim_id="claim-2", carrier="UPS", amount=EUR_40)
    await carrier.chase(carrier_reference=filed, idempotency_key="claim-2:chase:1")
    with pytest.raises(OutsideRefusal, match="out for delivery"):
        await carrier.intercept(order_id="O-1", carrier="SF")
    await carrier.service.aclose()
    assert filed == "merchant-claims-claim-2"
    assert merchant.booked["claims"] == 2  # the filing and its chase, each under its key


async def test_messaging_refuses_an_unreachable_customer(merchant: MerchantService) -> None:
    merchant.unreachable_customers.add("cust-gone")
    notifier = HttpNotifier(endpoint(merchant.url))

    def message(customer: str) -> CustomerMessage:
        return CustomerMessage(
            idempotency_key=f"c:{customer}:case_acknowledged:1", case_id="c", customer_id=customer,
            template=Template.CASE_ACKNOWLEDGED, params={}, due_at=datetime.now(UTC),
        )  # fmt: skip

    with pytest.raises(OutsideRefusal, match="no reachable address"):
        await notifier.deliver(message("cust-gone"))
    await notifier.deliver(message("cust-1"))
    await notifier.service.aclose()
    assert merchant.booked["messages"] == 1
    assert merchant.requests[-1][2]["template"] == "case_acknowledged"


# ---- through the activity: a refusal is never retried -----------------------------------


async def test_r21_a_declined_refund_fails_the_activity_for_good_and_leaves_no_money_moved(
    merchant: MerchantService, pool: asyncpg.Pool
) -> None:
    request = a_request(paid_minor=4_000, request_id="http-1")
    # The case's ledger row: money moves only for a case the ledger knows (R21).
    await pool.execute(
        """INSERT INTO cases (case_id, kind, reason, channel, order_id, line_id, request_id,
               sku, category, customer_id, status, currency, paid_minor, refund_limit_minor,
               refunded_minor, policy_version, waiting_for, opened_at, last_seq, updated_at)
           VALUES ($1, 'return', 'changed_mind', 'web', $2, $3, 'http-1', 'SKU-1', 'apparel',
                   'cust-1', 'refund_due', 'EUR', 4000, 4000, 0, 'test', 'a refund', now(),
                   1, now())""",
        request.case_id,
        request.order_id,
        request.line_id,
    )
    merchant.declined_cases.add(request.case_id)
    payments = PaymentActivities(pool, HttpPaymentProvider(endpoint(merchant.url)))
    order = RefundOrder(
        case_id=request.case_id, idempotency_key=f"{request.case_id}:refund:1", amount=EUR_40,
        limit=EUR_40,
    )  # fmt: skip
    with pytest.raises(ApplicationError) as declined:
        await payments.issue_refund(order)
    row = await pool.fetchrow(
        "SELECT status FROM money_movements WHERE idempotency_key = $1", order.idempotency_key
    )
    assert declined.value.type == NoType.PAYMENT_DECLINED
    assert declined.value.non_retryable
    assert row is not None
    assert row["status"] == "pending"  # reserved, not paid: a retry asks the provider first


# ---- by configuration alone ---------------------------------------------------------------


def test_each_system_is_the_sandbox_unless_its_url_is_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AFTERSALES_SANDBOX_PAYMENTS_JOURNAL", str(tmp_path / "pay.jsonl"))
    for system in OutsideSystem:
        monkeypatch.setenv(f"AFTERSALES_{system.upper()}_URL", f"http://127.0.0.1:9/{system}")
        monkeypatch.setenv(f"AFTERSALES_{system.upper()}_SECRET", SECRET)
    monkeypatch.delenv("AFTERSALES_CARRIER_URL")
    systems = outside_systems(load_settings())
    assert isinstance(systems.payments, HttpPaymentProvider)
    assert isinstance(systems.notifier, HttpNotifier)
    assert isinstance(systems.warehouse, HttpWarehouse)
    assert not isinstance(systems.carrier, HttpCarrier)
    assert systems.where[OutsideSystem.CARRIER] == "sandbox"
    assert systems.where[OutsideSystem.PAYMENTS] == "http://127.0.0.1:9/payments"


def test_a_url_without_its_secret_is_refused_at_start_up_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AFTERSALES_WAREHOUSE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AFTERSALES_WAREHOUSE_SECRET", "short")
    with pytest.raises(ConfigurationError, match="AFTERSALES_WAREHOUSE_SECRET"):
        load_settings()


def test_the_sandbox_file_sets_what_the_sandboxes_refuse(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    file = tmp_path / "sandbox.toml"
    file.write_text(
        '[payments]\ndeclined_orders = ["O-7"]\n'
        '[warehouse]\nout_of_stock = ["SKU-9"]\nalready_shipped = ["O-8"]\n'
        '[carrier]\nrejecting_claims = ["DHL"]\nrefusing_intercepts = ["SF"]\n'
    )
    monkeypatch.setenv("AFTERSALES_SANDBOX_FILE", str(file))
    monkeypatch.setenv("AFTERSALES_SANDBOX_PAYMENTS_JOURNAL", str(tmp_path / "pay.jsonl"))
    settings = load_settings()
    systems = outside_systems(settings)
    assert isinstance(systems.payments, JournaledSandboxPaymentProvider)
    assert systems.payments.declined_orders == {"O-7"}
    assert isinstance(systems.warehouse, SandboxWarehouse)
    assert systems.warehouse.out_of_stock == {"SKU-9"}
    assert isinstance(systems.notifier, LoggingNotifier)
    file.write_text('[warehouse]\nout_of_stok = ["SKU-9"]\n')
    with pytest.raises(ConfigurationError, match="out_of_stok"):
        outside_systems(settings)
