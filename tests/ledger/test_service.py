from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from siyu.core.errors import Conflict, ValidationFailed
from siyu.ledger import service
from siyu.ledger.models import LedgerAccount, LedgerEntry
from tests.factories.ledger import make_account
from tests.factories.merchants import make_merchant, make_staff, principal_of


def _count_entries(db, merchant_id):
    return db.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.merchant_id == merchant_id))


def test_post_moves_balance_and_appends_entry(db):
    # given
    merchant = make_merchant(db)
    actor = principal_of(db, make_staff(db, merchant=merchant))
    # when
    first = service.post(db, merchant_id=merchant.id, kind="stock", owner_type="sku", owner_id=7, delta=30,
                         reason="restock", idempotency_key="k1", note="truck", ref_type="sku", ref_id=7, actor=actor)
    second = service.post(db, merchant_id=merchant.id, kind="stock", owner_type="sku", owner_id=7, delta=-12,
                          reason="damage", idempotency_key="k2")
    # then
    assert (first.delta, first.balance_after, first.reason, first.note) == (30, 30, "restock", "truck")
    assert (first.actor_type, first.actor_id) == ("staff", actor.subject_id)
    assert (second.delta, second.balance_after, second.actor_type, second.actor_id) == (-12, 18, "system", None)
    assert service.balance(db, merchant_id=merchant.id, kind="stock", owner_type="sku", owner_id=7) == 18
    assert service.verify(db, merchant.id) == []


def test_post_that_would_go_negative_raises_and_moves_nothing(db):
    # given
    merchant = make_merchant(db)
    acct = make_account(db, merchant=merchant, kind="stock", owner_type="sku", owner_id=5, balance=3)
    before = _count_entries(db, merchant.id)
    # when
    with pytest.raises(Conflict) as exc:
        service.post(db, merchant_id=merchant.id, kind="stock", owner_type="sku", owner_id=5, delta=-4,
                     reason="order", idempotency_key="take-4")
    # then
    assert exc.value.code == "insufficient_balance"
    assert exc.value.details["balance"] == 3
    db.expire_all()
    assert db.get(LedgerAccount, acct.id).balance == 3
    assert _count_entries(db, merchant.id) == before
    assert service.find_entry(db, merchant_id=merchant.id, idempotency_key="take-4") is None


def test_taking_exactly_the_balance_leaves_zero(db):
    merchant = make_merchant(db)
    make_account(db, merchant=merchant, kind="stock", owner_type="sku", owner_id=5, balance=3)
    entry = service.post(db, merchant_id=merchant.id, kind="stock", owner_type="sku", owner_id=5, delta=-3,
                         reason="order", idempotency_key="all")
    assert entry.balance_after == 0


def test_replayed_key_returns_first_entry_and_moves_nothing(db):
    # given
    merchant = make_merchant(db)
    first = service.post(db, merchant_id=merchant.id, kind="points", owner_type="customer", owner_id=1, delta=100,
                         reason="earn", idempotency_key="order:9:earn")
    # when
    again = service.post(db, merchant_id=merchant.id, kind="points", owner_type="customer", owner_id=1, delta=100,
                         reason="earn", idempotency_key="order:9:earn")
    # then
    assert again.id == first.id
    assert service.balance(db, merchant_id=merchant.id, kind="points", owner_type="customer", owner_id=1) == 100
    assert _count_entries(db, merchant.id) == 1


def test_reused_key_for_a_different_movement_is_refused(db):
    merchant = make_merchant(db)
    service.post(db, merchant_id=merchant.id, kind="points", owner_type="customer", owner_id=1, delta=100,
                 reason="earn", idempotency_key="dup")
    with pytest.raises(Conflict) as exc:
        service.post(db, merchant_id=merchant.id, kind="points", owner_type="customer", owner_id=1, delta=50,
                     reason="earn", idempotency_key="dup")
    assert exc.value.code == "idempotency_key_reused"
    assert service.balance(db, merchant_id=merchant.id, kind="points", owner_type="customer", owner_id=1) == 100


def test_keys_are_per_merchant(db):
    a, b = make_merchant(db), make_merchant(db)
    ea = service.post(db, merchant_id=a.id, kind="points", owner_type="customer", owner_id=1, delta=5, reason="x",
                      idempotency_key="same")
    eb = service.post(db, merchant_id=b.id, kind="points", owner_type="customer", owner_id=1, delta=5, reason="x",
                      idempotency_key="same")
    assert ea.id != eb.id
    assert service.balances(db, merchant_id=a.id, kind="points", owner_type="customer", owner_ids=[1]) == {1: 5}


def test_bad_keys_and_amounts_are_refused(db):
    merchant = make_merchant(db)
    kwargs = dict(merchant_id=merchant.id, kind="points", owner_type="customer", owner_id=1, reason="x")
    with pytest.raises(ValidationFailed):
        service.post(db, **kwargs, delta=1, idempotency_key="")
    with pytest.raises(ValidationFailed):
        service.post(db, **kwargs, delta=1, idempotency_key="k" * 201)
    with pytest.raises(ValidationFailed):
        service.post(db, **kwargs, delta=2**60, idempotency_key="big")
    assert _count_entries(db, merchant.id) == 0


def test_balances_in_one_query_with_zero_for_missing(db):
    merchant = make_merchant(db)
    make_account(db, merchant=merchant, kind="stock", owner_type="sku", owner_id=1, balance=4)
    make_account(db, merchant=merchant, kind="stock", owner_type="sku", owner_id=2, balance=9)
    make_account(db, merchant=merchant, kind="points", owner_type="sku", owner_id=3, balance=9)
    got = service.balances(db, merchant_id=merchant.id, kind="stock", owner_type="sku", owner_ids=[1, 2, 3, 2])
    assert got == {1: 4, 2: 9, 3: 0}
    assert service.balances(db, merchant_id=merchant.id, kind="stock", owner_type="sku", owner_ids=[]) == {}


def test_account_without_create_is_none(db):
    merchant = make_merchant(db)
    assert service.account(db, merchant_id=merchant.id, kind="stock", owner_type="sku", owner_id=1, create=False) is None
    acct = service.account(db, merchant_id=merchant.id, kind="stock", owner_type="sku", owner_id=1)
    assert acct.balance == 0
    assert service.account(db, merchant_id=merchant.id, kind="stock", owner_type="sku", owner_id=1).id == acct.id


def test_entries_paginated_newest_first(db):
    merchant = make_merchant(db)
    for i in range(5):
        service.post(db, merchant_id=merchant.id, kind="points", owner_type="customer", owner_id=1, delta=i + 1,
                     reason="earn", idempotency_key=f"e{i}")
    page = service.entries(db, merchant_id=merchant.id, kind="points", owner_type="customer", owner_id=1, limit=3)
    assert [e.delta for e in page.items] == [5, 4, 3]
    rest = service.entries(db, merchant_id=merchant.id, kind="points", owner_type="customer", owner_id=1,
                           cursor=page.next_cursor, limit=3)
    assert [e.delta for e in rest.items] == [2, 1] and rest.next_cursor is None
    assert service.entries(db, merchant_id=merchant.id, kind="points", owner_type="customer", owner_id=99).items == []


def test_open_accounts_in_bulk_keeps_invariant(db):
    merchant = make_merchant(db)
    by_owner = service.open_accounts(db, merchant_id=merchant.id, kind="stock", owner_type="sku",
                                     opening={11: 5, 12: 0, 13: 7}, reason="initial", key_prefix="sku-initial")
    assert set(by_owner) == {11, 12, 13}
    assert service.balances(db, merchant_id=merchant.id, kind="stock", owner_type="sku", owner_ids=[11, 12, 13]) == \
        {11: 5, 12: 0, 13: 7}
    assert _count_entries(db, merchant.id) == 2
    assert service.verify(db, merchant.id) == []
    # the opening entries are keyed, so posting them again is a replay
    again = service.post(db, merchant_id=merchant.id, kind="stock", owner_type="sku", owner_id=11, delta=5,
                         reason="initial", idempotency_key="sku-initial:11")
    assert again.balance_after == 5


def test_verify_reports_a_tampered_balance(db):
    # given a balance changed behind the ledger's back
    merchant = make_merchant(db)
    acct = make_account(db, merchant=merchant, kind="points", owner_type="customer", owner_id=3, balance=10)
    db.execute(update(LedgerAccount).where(LedgerAccount.id == acct.id).values(balance=11))
    # then
    [mismatch] = service.verify(db, merchant.id)
    assert (mismatch.account_id, mismatch.balance, mismatch.entries_sum) == (acct.id, 11, 10)


def test_database_refuses_a_negative_balance(db):
    from sqlalchemy.exc import IntegrityError

    merchant = make_merchant(db)
    acct = make_account(db, merchant=merchant, balance=1)
    with pytest.raises(IntegrityError), db.begin_nested():
        db.execute(update(LedgerAccount).where(LedgerAccount.id == acct.id).values(balance=-1))


def test_balance_expression_filters_in_sql(db):
    merchant = make_merchant(db)
    make_account(db, merchant=merchant, kind="stock", owner_type="sku", owner_id=1, balance=4)
    expr = service.balance_expression(merchant_id=merchant.id, kind="stock", owner_type="sku", owner_id=1)
    assert db.scalar(select(expr)) == 4
    expr = service.balance_expression(merchant_id=merchant.id, kind="stock", owner_type="sku", owner_id=2)
    assert db.scalar(select(expr)) == 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(deltas=st.lists(st.integers(min_value=-50, max_value=50), min_size=1, max_size=30),
       owners=st.lists(st.integers(min_value=1, max_value=3), min_size=30, max_size=30))
def test_random_posts_keep_sum_equal_to_balance_and_never_negative(db, deltas, owners):
    # given a fresh merchant per example
    merchant = make_merchant(db)
    expected = {1: 0, 2: 0, 3: 0}
    # when random posts run, some refused
    for i, delta in enumerate(deltas):
        owner = owners[i]
        try:
            entry = service.post(db, merchant_id=merchant.id, kind="stock", owner_type="sku", owner_id=owner,
                                 delta=delta, reason="random", idempotency_key=f"h{i}")
        except Conflict:
            assert expected[owner] + delta < 0
            continue
        expected[owner] += delta
        assert entry.balance_after == expected[owner] >= 0
    # then the ledger agrees with itself and with the model
    assert service.verify(db, merchant.id) == []
    assert service.balances(db, merchant_id=merchant.id, kind="stock", owner_type="sku", owner_ids=[1, 2, 3]) == expected
    sums = dict(db.execute(
        select(LedgerAccount.owner_id, func.coalesce(func.sum(LedgerEntry.delta), 0))
        .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
        .where(LedgerAccount.merchant_id == merchant.id).group_by(LedgerAccount.owner_id)
    ).all())
    for owner, total in sums.items():
        assert total == expected[owner]
