"""Service tests of payments: sandbox flow, notifications, state rules, refunds, stored value."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from siyu.core import clock
from siyu.core.errors import AppError, Conflict, NotFound, ValidationFailed
from siyu.core.models import OutboxEvent
from siyu.core.states import InvalidTransition
from siyu.payments import service
from siyu.payments.models import Payment, PaymentNotification, PaymentRefund
from siyu.payments.providers import register_balance_provider
from siyu.payments.states import assert_transition
from tests.factories.customers import make_customer
from tests.factories.merchants import make_merchant
from tests.factories.payments import make_payment, make_refund, next_order_id, sandbox_notification

T0 = dt.datetime(2025, 3, 1, 2, 0, tzinfo=dt.UTC)


def events(db, name):
    return [e.payload for e in db.scalars(select(OutboxEvent).where(OutboxEvent.name == name).order_by(OutboxEvent.id))]


def notifications(db, merchant):
    return list(db.scalars(select(PaymentNotification).where(PaymentNotification.merchant_id == merchant.id)
                           .order_by(PaymentNotification.id)))


def start(db, merchant, customer, *, amount_cents=2590, method="sandbox", order_id=None, **kw):
    return service.start_payment(db, merchant_id=merchant.id, customer_id=customer.id,
                                 order_id=order_id or next_order_id(), order_no="SO20250301001",
                                 amount_cents=amount_cents, method=method, description="测试商品", **kw)


@pytest.fixture
def shop(db):
    merchant = make_merchant(db)
    return merchant, make_customer(db, merchant=merchant)


# ---------------------------------------------------------------- starting


def test_start_sandbox_payment_gives_confirm_and_pay_page_urls(db, shop):
    merchant, customer = shop
    # when
    with clock.frozen(T0):
        started = start(db, merchant, customer, order_id=4242)
    # then
    payment = db.get(Payment, started.payment_id)
    assert started.status == "created" and payment.status == "created"
    assert started.sandbox_confirm_url == f"/api/v1/shop/{merchant.slug}/payments/{payment.id}/sandbox-confirm"
    assert started.pay_page_url == f"/shop/{merchant.slug}/pay/{payment.id}"
    assert started.wechatpay is None and started.h5_url is None
    assert payment.out_trade_no == f"P20250301{payment.id:012d}"
    assert (payment.order_id, payment.amount_cents, payment.refunded_cents) == (4242, 2590, 0)
    assert payment.expires_at == T0 + dt.timedelta(minutes=15)
    assert started.to_dict() == {"payment_id": payment.id, "status": "created", "method": "sandbox",
                                 "amount_cents": 2590, "sandbox_confirm_url": started.sandbox_confirm_url,
                                 "pay_page_url": started.pay_page_url}
    assert events(db, "payment.succeeded") == []


def test_starting_again_closes_the_earlier_unpaid_payment(db, shop):
    merchant, customer = shop
    first = start(db, merchant, customer, order_id=77)
    # when
    second = start(db, merchant, customer, order_id=77)
    # then
    assert db.get(Payment, first.payment_id).status == "closed"
    assert db.get(Payment, second.payment_id).status == "created"
    assert [p.id for p in service.payments_for_order(db, merchant_id=merchant.id, order_id=77)] == [
        first.payment_id, second.payment_id]


def test_an_order_already_paid_cannot_start_another_payment(db, shop):
    merchant, customer = shop
    paid = make_payment(db, merchant=merchant, customer=customer, order_id=78, status="succeeded")
    # when / then
    with pytest.raises(Conflict) as err:
        start(db, merchant, customer, order_id=78)
    assert err.value.code == "already_paid"
    assert db.scalar(select(func.count(Payment.id)).where(Payment.order_id == 78)) == 1
    assert paid.status == "succeeded"


@pytest.mark.parametrize("method, amount", [("cash", 100), ("sandbox", 0), ("sandbox", -5), ("sandbox", 2**31)])
def test_start_refuses_bad_method_or_amount(db, shop, method, amount):
    merchant, customer = shop
    with pytest.raises(ValidationFailed):
        start(db, merchant, customer, method=method, amount_cents=amount)
    assert db.scalar(select(func.count(Payment.id)).where(Payment.merchant_id == merchant.id)) == 0


# ---------------------------------------------------------------- states


@pytest.mark.parametrize("old, new", [("succeeded", "closed"), ("succeeded", "created"), ("closed", "created"),
                                      ("closed", "failed"), ("created", "created"), ("succeeded", "succeeded")])
def test_illegal_transitions_are_refused(old, new):
    with pytest.raises(InvalidTransition) as err:
        assert_transition(old, new)
    assert err.value.status_code == 409 and err.value.details == {"from": old, "to": new}


@pytest.mark.parametrize("old, new", [("created", "succeeded"), ("created", "closed"), ("created", "failed"),
                                      ("closed", "succeeded"), ("failed", "succeeded")])
def test_legal_transitions_pass(old, new):
    assert_transition(old, new)


def test_closing_payments_of_an_order_leaves_succeeded_ones(db, shop):
    merchant, customer = shop
    unpaid = make_payment(db, merchant=merchant, customer=customer, order_id=90)
    other = make_payment(db, merchant=merchant, customer=customer, order_id=91)
    # when
    closed = service.close_payments_for_order(db, merchant_id=merchant.id, order_id=90)
    # then
    assert closed == [unpaid.id]
    assert unpaid.status == "closed" and unpaid.closed_at is not None
    assert other.status == "created"
    assert service.close_payments_for_order(db, merchant_id=merchant.id, order_id=90) == []


# ---------------------------------------------------------------- sandbox round trip


def test_sandbox_confirm_goes_through_the_notification_handler(db, shop):
    merchant, customer = shop
    with clock.frozen(T0):
        started = start(db, merchant, customer, order_id=555, amount_cents=1234)
        # when
        payment = service.sandbox_confirm(db, merchant=merchant, payment_id=started.payment_id, customer_id=customer.id)
    # then
    assert payment.status == "succeeded" and payment.paid_at == T0
    assert payment.provider_txn_id == f"SBX{payment.out_trade_no}"
    assert events(db, "payment.succeeded") == [{
        "payment_id": payment.id, "order_id": 555, "customer_id": customer.id, "amount_cents": 1234,
        "method": "sandbox", "paid_at": T0.isoformat()}]
    [note] = notifications(db, merchant)
    assert (note.provider, note.verified, note.outcome, note.kind, note.payment_id) == (
        "sandbox", True, "paid", "paid", payment.id)
    assert note.notification_id and note.headers["sandbox-signature"]
    assert '"TRANSACTION.SUCCESS"' in note.body


def test_sandbox_confirm_twice_is_409_and_emits_once(db, shop):
    merchant, customer = shop
    started = start(db, merchant, customer)
    service.sandbox_confirm(db, merchant=merchant, payment_id=started.payment_id, customer_id=customer.id)
    # when / then
    with pytest.raises(Conflict) as err:
        service.sandbox_confirm(db, merchant=merchant, payment_id=started.payment_id, customer_id=customer.id)
    assert err.value.code == "payment_not_pending"
    assert len(events(db, "payment.succeeded")) == 1


def test_sandbox_confirm_of_someone_elses_payment_is_not_found(db, shop):
    merchant, customer = shop
    stranger = make_customer(db, merchant=merchant)
    started = start(db, merchant, customer)
    with pytest.raises(NotFound):
        service.sandbox_confirm(db, merchant=merchant, payment_id=started.payment_id, customer_id=stranger.id)
    assert db.get(Payment, started.payment_id).status == "created"
    assert events(db, "payment.succeeded") == []


def test_sandbox_confirm_after_expiry_is_refused(db, shop):
    merchant, customer = shop
    with clock.frozen(T0):
        started = start(db, merchant, customer)
    with clock.frozen(T0 + dt.timedelta(minutes=16)), pytest.raises(Conflict) as err:
        service.sandbox_confirm(db, merchant=merchant, payment_id=started.payment_id, customer_id=customer.id)
    assert err.value.code == "payment_expired"
    assert db.get(Payment, started.payment_id).status == "created"


# ---------------------------------------------------------------- notifications


def handle(db, merchant, headers, body, provider="sandbox"):
    return service.handle_notification(db, merchant=merchant, provider=provider, headers=headers, body=body)


def test_valid_notification_then_replay_changes_nothing_the_second_time(db, shop):
    merchant, customer = shop
    payment = make_payment(db, merchant=merchant, customer=customer)
    headers, body = sandbox_notification(payment)
    # when
    first = handle(db, merchant, headers, body)
    second = handle(db, merchant, headers, body)
    # then
    assert (first.accepted, first.outcome, first.status_code) == (True, "paid", 200)
    assert (second.accepted, second.outcome, second.status_code) == (True, "duplicate", 200)
    assert second.response_body() == {"code": "SUCCESS"}
    assert len(events(db, "payment.succeeded")) == 1
    logged = notifications(db, merchant)
    assert [n.outcome for n in logged] == ["paid", "duplicate"]
    assert logged[1].duplicate_of_id == logged[0].id and logged[1].notification_id is None


def test_a_duplicate_with_a_new_id_for_a_paid_payment_changes_nothing(db, shop):
    merchant, customer = shop
    payment = make_payment(db, merchant=merchant, customer=customer)
    handle(db, merchant, *sandbox_notification(payment))
    paid_at = payment.paid_at
    # when
    outcome = handle(db, merchant, *sandbox_notification(payment))
    # then
    assert outcome.outcome == "duplicate" and outcome.accepted
    assert payment.paid_at == paid_at
    assert len(events(db, "payment.succeeded")) == 1


def test_forged_signature_is_rejected_logged_and_changes_nothing(db, shop):
    merchant, customer = shop
    other = make_merchant(db)
    payment = make_payment(db, merchant=merchant, customer=customer)
    # signed with another merchant's sandbox key
    headers, body = sandbox_notification(payment, merchant_id=other.id)
    # when
    outcome = handle(db, merchant, headers, body)
    # then
    assert (outcome.accepted, outcome.outcome, outcome.status_code) == (False, "rejected", 401)
    assert outcome.response_body() == {"code": "FAIL", "message": "bad signature"}
    assert payment.status == "created" and payment.paid_at is None
    assert events(db, "payment.succeeded") == []
    [note] = notifications(db, merchant)
    assert (note.verified, note.outcome, note.error, note.payment_id) == (False, "rejected", "bad signature", None)
    assert note.claimed_id and note.notification_id is None


def test_tampered_body_is_rejected(db, shop):
    merchant, customer = shop
    payment = make_payment(db, merchant=merchant, customer=customer, amount_cents=5000)
    headers, body = sandbox_notification(payment, amount_cents=5000)
    outcome = handle(db, merchant, headers, body.replace(b"5000", b"1"))
    assert outcome.status_code == 401 and payment.status == "created"


def test_missing_headers_are_rejected(db, shop):
    merchant, customer = shop
    payment = make_payment(db, merchant=merchant, customer=customer)
    _headers, body = sandbox_notification(payment)
    outcome = handle(db, merchant, {"Content-Type": "application/json"}, body)
    assert (outcome.status_code, outcome.error) == (401, "missing signature headers")
    assert payment.status == "created"


def test_wrong_amount_is_rejected_and_logged(db, shop):
    merchant, customer = shop
    payment = make_payment(db, merchant=merchant, customer=customer, amount_cents=9900)
    # when: a genuine signature over a notification for less money
    outcome = handle(db, merchant, *sandbox_notification(payment, amount_cents=1))
    # then
    assert (outcome.accepted, outcome.status_code) == (False, 400)
    assert payment.status == "created"
    assert events(db, "payment.succeeded") == []
    [note] = notifications(db, merchant)
    assert (note.verified, note.outcome, note.payment_id) == (True, "rejected", payment.id)
    assert note.error == "amount 1 does not match 9900"


def test_stale_timestamp_is_rejected(db, shop):
    merchant, customer = shop
    payment = make_payment(db, merchant=merchant, customer=customer)
    headers, body = sandbox_notification(payment, timestamp=clock.now() - dt.timedelta(minutes=6))
    outcome = handle(db, merchant, headers, body)
    assert (outcome.status_code, outcome.error) == (400, "stale timestamp")
    assert payment.status == "created" and events(db, "payment.succeeded") == []


def test_unknown_payment_and_unknown_provider_are_rejected_and_logged(db, shop):
    merchant, customer = shop
    payment = make_payment(db, merchant=merchant, customer=customer)
    payment.out_trade_no = "P-not-ours"
    headers, body = sandbox_notification(payment)
    db.expire(payment)
    assert handle(db, merchant, headers, body).status_code == 404
    assert handle(db, merchant, headers, body, provider="alipay").status_code == 404
    assert [(n.provider, n.outcome, n.error) for n in notifications(db, merchant)] == [
        ("sandbox", "rejected", "unknown payment"), ("alipay", "rejected", "unknown provider")]


def test_huge_and_garbage_bodies_are_rejected(db, shop):
    merchant, _customer = shop
    assert handle(db, merchant, {}, b"x" * (service.MAX_NOTIFICATION_BYTES + 1)).status_code == 413
    assert handle(db, merchant, {}, b"\xff\xfe not json").status_code == 401
    assert [n.outcome for n in notifications(db, merchant)] == ["rejected", "rejected"]


def test_late_payment_on_a_closed_payment_still_succeeds_and_emits(db, shop):
    merchant, customer = shop
    payment = make_payment(db, merchant=merchant, customer=customer, order_id=321, amount_cents=800)
    service.close_payments_for_order(db, merchant_id=merchant.id, order_id=321)
    assert payment.status == "closed"
    # when the provider reports the money taken after all
    outcome = handle(db, merchant, *sandbox_notification(payment))
    # then
    assert (outcome.accepted, outcome.outcome) == (True, "paid_late")
    assert payment.status == "succeeded"
    [event] = events(db, "payment.succeeded")
    assert (event["payment_id"], event["order_id"], event["amount_cents"]) == (payment.id, 321, 800)


def test_other_event_types_are_acknowledged_and_ignored(db, shop):
    merchant, customer = shop
    payment = make_payment(db, merchant=merchant, customer=customer)
    outcome = handle(db, merchant, *sandbox_notification(payment, event_type="TRANSACTION.CLOSED"))
    assert (outcome.status_code, outcome.outcome) == (200, "ignored")
    assert payment.status == "created"


# ---------------------------------------------------------------- refunds


def refund(db, payment, amount, key="r1", reason="七天无理由"):
    return service.refund(db, merchant_id=payment.merchant_id, payment_id=payment.id, amount_cents=amount,
                          reason=reason, refund_key=key)


def test_partial_then_full_refund(db, shop):
    merchant, customer = shop
    payment = make_payment(db, merchant=merchant, customer=customer, amount_cents=1000, status="succeeded", order_id=12)
    # when
    first = refund(db, payment, 300, key="a")
    assert payment.refund_state == "partly_refunded"
    second = refund(db, payment, 700, key="b")
    # then
    assert (first.status, second.status) == ("succeeded", "succeeded")
    assert payment.refunded_cents == 1000 and payment.refund_state == "refunded" and payment.status == "succeeded"
    assert first.out_refund_no.startswith("R") and first.out_refund_no != second.out_refund_no
    assert events(db, "payment.refunded") == [
        {"payment_id": payment.id, "order_id": 12, "refund_id": first.refund_id, "amount_cents": 300},
        {"payment_id": payment.id, "order_id": 12, "refund_id": second.refund_id, "amount_cents": 700}]


def test_refund_exceeding_what_is_left_is_409_and_changes_nothing(db, shop):
    merchant, customer = shop
    payment = make_payment(db, merchant=merchant, customer=customer, amount_cents=1000, status="succeeded")
    refund(db, payment, 600, key="a")
    # when / then
    with pytest.raises(Conflict) as err:
        refund(db, payment, 401, key="b")
    assert err.value.code == "refund_exceeds_paid"
    assert err.value.details == {"refundable_cents": 400, "requested_cents": 401}
    assert payment.refunded_cents == 600
    assert db.scalar(select(func.count(PaymentRefund.id)).where(PaymentRefund.payment_id == payment.id)) == 1
    assert len(events(db, "payment.refunded")) == 1


def test_pending_refunds_count_against_what_is_left(db, shop):
    merchant, customer = shop
    payment = make_payment(db, merchant=merchant, customer=customer, amount_cents=1000, status="succeeded")
    make_refund(db, payment=payment, amount_cents=900, status="pending")
    with pytest.raises(Conflict) as err:
        refund(db, payment, 101, key="x")
    assert err.value.details["refundable_cents"] == 100


def test_refund_is_idempotent_by_key(db, shop):
    merchant, customer = shop
    payment = make_payment(db, merchant=merchant, customer=customer, amount_cents=1000, status="succeeded")
    first = refund(db, payment, 500, key="after_sale:1")
    # when
    again = refund(db, payment, 500, key="after_sale:1")
    # then
    assert again.refund_id == first.refund_id and again.replayed and again.status == "succeeded"
    assert payment.refunded_cents == 500
    assert len(events(db, "payment.refunded")) == 1
    with pytest.raises(Conflict) as err:
        refund(db, payment, 400, key="after_sale:1")
    assert err.value.code == "refund_key_reused"


def test_unpaid_payment_cannot_be_refunded(db, shop):
    merchant, customer = shop
    payment = make_payment(db, merchant=merchant, customer=customer)
    with pytest.raises(Conflict) as err:
        refund(db, payment, 100)
    assert err.value.code == "payment_not_paid"
    assert db.scalar(select(func.count(PaymentRefund.id))) == 0


@pytest.mark.parametrize("amount, key", [(0, "k"), (-1, "k"), (2**31, "k"), (100, ""), (100, "k" * 201)])
def test_refund_refuses_bad_input(db, shop, amount, key):
    merchant, customer = shop
    payment = make_payment(db, merchant=merchant, customer=customer, status="succeeded")
    with pytest.raises(ValidationFailed):
        refund(db, payment, amount, key=key)


def test_refund_of_another_merchants_payment_is_not_found(db, shop):
    merchant, customer = shop
    payment = make_payment(db, merchant=merchant, customer=customer, status="succeeded")
    other = make_merchant(db)
    with pytest.raises(NotFound):
        service.refund(db, merchant_id=other.id, payment_id=payment.id, amount_cents=1, reason="", refund_key="k")


# ---------------------------------------------------------------- stored value


class FakeBalance:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple] = []
        self.fail = fail

    def charge(self, session, *, merchant_id, customer_id, amount_cents, payment_id):
        if self.fail:
            raise AppError("Not enough stored value.", code="insufficient_balance", status_code=409)
        self.calls.append(("charge", customer_id, amount_cents, payment_id))

    def refund(self, session, *, merchant_id, customer_id, amount_cents, payment_id, refund_id):
        self.calls.append(("refund", customer_id, amount_cents, payment_id, refund_id))


def test_balance_without_a_provider_is_409(db, shop):
    merchant, customer = shop
    with pytest.raises(Conflict) as err:
        start(db, merchant, customer, method="balance")
    assert err.value.code == "balance_unavailable"
    assert db.scalar(select(func.count(Payment.id)).where(Payment.merchant_id == merchant.id)) == 0


def test_balance_with_a_provider_succeeds_at_once_and_refunds_through_it(db, shop):
    merchant, customer = shop
    balance = FakeBalance()
    register_balance_provider(balance)
    # when
    started = start(db, merchant, customer, method="balance", amount_cents=450, order_id=66)
    # then
    payment = db.get(Payment, started.payment_id)
    assert started.status == "succeeded" and payment.status == "succeeded"
    assert balance.calls == [("charge", customer.id, 450, payment.id)]
    assert [e["method"] for e in events(db, "payment.succeeded")] == ["balance"]
    result = refund(db, payment, 200)
    assert result.status == "succeeded"
    assert balance.calls[-1] == ("refund", customer.id, 200, payment.id, result.refund_id)


def test_balance_charge_failure_propagates(db, shop):
    merchant, customer = shop
    register_balance_provider(FakeBalance(fail=True))
    with pytest.raises(AppError) as err:
        start(db, merchant, customer, method="balance")
    assert err.value.code == "insufficient_balance"
    assert events(db, "payment.succeeded") == []
