"""A pop-up coupon claimed by the same customer from several tabs at once: exactly one coupon, one claim row."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from siyu.core.errors import AppError
from siyu.db import Database, use_database
from siyu.promotions.models.coupons import Coupon
from siyu.promotions.models.popups import PopupEvent
from siyu.promotions.service import popups as service
from tests.conftest import BACKENDS, committed
from tests.factories.customers import make_customer
from tests.factories.merchants import make_merchant
from tests.factories.orders import customer_principal
from tests.factories.promotions import make_coupon_template, make_popup_rule

TABS = 6


@pytest.fixture(params=BACKENDS)
def race_db(request: pytest.FixtureRequest) -> Database:
    with committed(request.param, "h2_popup_race") as database:
        yield database


def test_concurrent_claims_give_one_coupon(race_db: Database) -> None:
    # given: a coupon pop-up whose template would allow five coupons per customer
    with use_database(race_db), race_db.scope() as session:
        merchant = make_merchant(session)
        template = make_coupon_template(session, merchant=merchant, channels=["campaign"], per_customer_limit=5)
        rule_id = make_popup_rule(session, merchant=merchant, audience="everyone", content_kind="coupon",
                                  template=template).id
        actor = customer_principal(make_customer(session, merchant=merchant))
    results: list[str] = []
    start = threading.Barrier(TABS)

    def claim() -> None:
        with use_database(race_db):
            start.wait()
            try:
                with race_db.scope() as session:
                    service.claim(session, actor=actor, rule_id=rule_id)
                results.append("ok")
            except AppError as exc:
                results.append(exc.code)
            except Exception as exc:  # a lock timeout would show here, never silently
                results.append(f"error:{exc!r}")

    # when
    threads = [threading.Thread(target=claim) for _ in range(TABS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    # then
    assert sorted(results) == ["offer_already_claimed"] * (TABS - 1) + ["ok"]
    with use_database(race_db), race_db.scope() as session:
        assert session.scalar(select(func.count()).select_from(Coupon)) == 1
        assert session.scalar(select(func.count()).select_from(PopupEvent).where(PopupEvent.kind == "claim")) == 1
