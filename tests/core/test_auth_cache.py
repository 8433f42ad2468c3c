"""The per-request lookups cached per process (core.auth_cache): the shop's merchant by slug and the
customer behind a token. A hit costs no query; every change the owner makes drops the entry at once."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.auth import system_principal
from siyu.core.auth_cache import TTLCache, engine_key, forget_now_and_after_commit
from siyu.core.errors import NotFound, Unauthorized
from siyu.customers import service as customers
from siyu.customers import signin
from siyu.customers.models import CustomerToken
from siyu.merchants import deps
from siyu.merchants import service as merchants
from siyu.merchants.models import Merchant
from tests.factories.customers import make_customer
from tests.factories.merchants import make_merchant


@pytest.fixture(autouse=True)
def empty_caches() -> Iterator[None]:
    signin._tokens.clear()
    deps._merchants.clear()
    yield
    signin._tokens.clear()
    deps._merchants.clear()


@contextlib.contextmanager
def statements(session: Session) -> Iterator[list[str]]:
    """The SQL statements sent on the session's connection inside the block."""
    sent: list[str] = []
    conn = session.connection()

    def count(_conn, _cursor, statement, *_args) -> None:
        sent.append(statement)

    event.listen(conn, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        event.remove(conn, "before_cursor_execute", count)


# ---------------------------------------------------------------- TTLCache


def test_ttl_cache_forgets_after_its_ttl_and_drops_the_oldest_when_full():
    # given
    cache = TTLCache(ttl=0.05, max_size=10)
    cache.put("a", 1)
    # then
    assert cache.get("a") == 1
    time.sleep(0.06)
    assert cache.get("a") is None
    # when: 11 entries in a cache of 10
    for i in range(11):
        cache.put(i, i)
    # then: the oldest went
    assert cache.get(0) is None
    assert cache.get(10) == 10
    assert len(cache) == 10


def test_ttl_cache_with_no_ttl_keeps_nothing():
    cache = TTLCache(ttl=0)
    cache.put("a", 1)
    assert cache.get("a") is None


def test_forget_runs_now_and_again_when_the_outer_transaction_ends(db):
    # given
    cache = TTLCache(ttl=60)
    cache.put("k", "old")
    # when: forgotten in a transaction, then a racing reader puts the old value back before the commit
    with db.begin_nested():
        forget_now_and_after_commit(db, lambda: cache.pop("k"))
        assert cache.get("k") is None
        cache.put("k", "old")
    # then: a savepoint's end is not the end of the transaction
    assert cache.get("k") == "old"
    db.commit()  # the test's session ends its (outer, joined) transaction
    assert cache.get("k") is None


# ---------------------------------------------------------------- customer tokens


def _token(db: Session) -> tuple[Merchant, int, str]:
    merchant = make_merchant(db)
    customer = make_customer(db, merchant=merchant)
    return merchant, customer.id, signin.issue_customer_token(db, customer)


def test_a_resolved_token_is_answered_again_without_a_query(db):
    # given
    merchant, customer_id, raw = _token(db)
    first = signin.resolve_customer_token(db, raw, merchant_id=merchant.id)
    # when
    with statements(db) as sent:
        again = signin.resolve_customer_token(db, raw, merchant_id=merchant.id)
    # then
    assert sent == []
    assert again == first
    assert again.customer_id == customer_id


def test_a_cached_token_is_refused_for_another_merchant_and_after_it_expires(db):
    # given
    merchant, _customer_id, raw = _token(db)
    other = make_merchant(db)
    signin.resolve_customer_token(db, raw, merchant_id=merchant.id)
    # then
    with pytest.raises(Unauthorized):
        signin.resolve_customer_token(db, raw, merchant_id=other.id)
    expires_at = db.scalar(select(CustomerToken.expires_at).where(CustomerToken.token_digest == signin.token_digest(raw)))
    with clock.frozen(expires_at + dt.timedelta(seconds=1)), pytest.raises(Unauthorized):
        signin.resolve_customer_token(db, raw, merchant_id=merchant.id)


def test_a_revoked_token_is_refused_at_once(db):
    # given
    merchant, _customer_id, raw = _token(db)
    signin.resolve_customer_token(db, raw, merchant_id=merchant.id)
    # when
    signin.revoke_customer_token(db, raw)
    # then
    with pytest.raises(Unauthorized):
        signin.resolve_customer_token(db, raw, merchant_id=merchant.id)


def test_logout_over_http_refuses_the_token_afterwards(db, client):
    # given: a signed-in customer whose token was used (and so cached)
    merchant = make_merchant(db)
    login = client.post(f"/api/v1/shop/{merchant.slug}/auth/dev-login", json={"openid": "o-logout"})
    raw = login.json()["access_token"]
    cookie = {signin_cookie(merchant): raw}
    assert client.get(f"/api/v1/shop/{merchant.slug}/orders", cookies=cookie).status_code == 200
    # when
    from siyu.customers.deps import csrf_for

    out = client.post(f"/shop/{merchant.slug}/logout", cookies=cookie, data={"csrf_token": csrf_for(raw)},
                      follow_redirects=False)
    assert out.status_code == 303
    # then
    assert client.get(f"/api/v1/shop/{merchant.slug}/orders",
                      headers={"Authorization": f"Bearer {raw}"}).status_code == 401


def signin_cookie(merchant: Merchant) -> str:
    from siyu.customers.deps import cookie_name

    return cookie_name(merchant.slug)


def test_a_merged_customers_token_acts_for_the_target_at_once(db):
    # given: the source customer's token was used (cached)
    merchant, source_id, raw = _token(db)
    target = make_customer(db, merchant=merchant)
    assert signin.resolve_customer_token(db, raw, merchant_id=merchant.id).customer_id == source_id
    # when
    customers.merge_customers(db, source_id=source_id, target_id=target.id, actor=system_principal(merchant.id))
    db.flush()
    # then
    assert signin.resolve_customer_token(db, raw, merchant_id=merchant.id).customer_id == target.id


def test_a_renamed_customer_is_seen_with_the_new_name(db):
    # given
    merchant, customer_id, raw = _token(db)
    signin.resolve_customer_token(db, raw, merchant_id=merchant.id)
    # when
    customer = customers.get_customer(db, customer_id, actor=system_principal(merchant.id))
    customer.nickname = "新名字"
    db.flush()
    # then
    assert signin.resolve_customer_token(db, raw, merchant_id=merchant.id).name == "新名字"


# ---------------------------------------------------------------- the shop's merchant


def test_the_merchant_of_a_slug_is_answered_again_without_a_query(db):
    # given
    merchant = make_merchant(db)
    merchants.update_merchant(db, actor=system_principal(merchant.id), settings={"shipping": {"flat_cents": 800}})
    db.flush()
    deps.merchant_by_slug(db, merchant.slug)
    db.expunge_all()
    # when
    with statements(db) as sent:
        again = deps.merchant_by_slug(db, merchant.slug)
    # then: the session holds it as loaded, with its own copy of the settings
    assert sent == []
    assert (again.id, again.slug, again.settings) == (merchant.id, merchant.slug, {"shipping": {"flat_cents": 800}})
    assert db.get(Merchant, merchant.id) is again
    again.settings["shipping"]["flat_cents"] = 1
    db.expunge_all()
    assert deps.merchant_by_slug(db, merchant.slug).settings == {"shipping": {"flat_cents": 800}}


def test_changed_merchant_settings_are_seen_at_once(db):
    # given
    merchant = make_merchant(db)
    deps.merchant_by_slug(db, merchant.slug)
    # when
    merchants.update_merchant(db, actor=system_principal(merchant.id), settings={"order_expiry_minutes": 30})
    db.flush()
    db.expunge_all()
    # then
    assert deps.merchant_by_slug(db, merchant.slug).settings == {"order_expiry_minutes": 30}


def test_a_merchant_gone_with_its_transaction_is_not_answered_from_the_cache(database):
    # given: a merchant created and cached in a transaction that is then rolled back
    with Session(database.engine) as session:
        merchant = make_merchant(session, slug="gone-shop")
        deps.merchant_by_slug(session, "gone-shop")
        session.rollback()
    # when: another merchant takes the slug
    with Session(database.engine) as session:
        other = Merchant(slug="gone-shop", name="另一家")
        session.add(other)
        session.flush()
        # then
        assert deps.merchant_by_slug(session, "gone-shop").name == "另一家"
        session.rollback()
    # and with nobody on the slug, it is not found
    with Session(database.engine) as session, pytest.raises(NotFound):
        deps.merchant_by_slug(session, "gone-shop")
    assert merchant.slug == "gone-shop"


def test_databases_do_not_share_entries(db, database):
    # given
    merchant = make_merchant(db)
    deps.merchant_by_slug(db, merchant.slug)
    # then: the key names the engine
    assert (engine_key(db), merchant.slug) in deps._merchants._data
