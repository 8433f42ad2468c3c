"""Racing deliveries of one subscribe event on a real database (committed rows, real threads):
exactly one is processed; one customer, one follower, one touch, one history row."""

from __future__ import annotations

import threading
from urllib.parse import parse_qsl

from sqlalchemy import func, select

from siyu.attribution.models.shares import Touch
from siyu.channels.models import ChannelEvent, InboundMessage, OaFollower
from siyu.channels.service import oa
from siyu.customers.models import Customer
from siyu.db import set_database
from siyu.merchants.models import Merchant
from tests.channels import wechat_messages as wm
from tests.channels.conftest import APPID
from tests.conftest import committed
from tests.factories.merchants import make_merchant

THREADS = 8


def test_racing_deliveries_of_one_event_apply_once(backend):
    token, aes_key = "racetoken", wm.new_aes_key()
    message = wm.oa_event(openid="o-racer", event="subscribe", key="", create_time=1700000123)
    with committed(backend, "h3race") as database:
        set_database(database)
        try:
            with database.scope() as session:
                merchant = make_merchant(session)
                merchant.settings = {"wechat_oa_appid": APPID, "wechat_oa_token": token, "wechat_oa_aes_key": aes_key}
                merchant_id = merchant.id
            deliveries = [wm.safe_request(token, aes_key, APPID, message) for _ in range(THREADS)]
            barrier = threading.Barrier(THREADS)
            outcomes: list[str] = []
            errors: list[BaseException] = []

            def deliver(query: str, body: bytes) -> None:
                barrier.wait()
                try:
                    with database.scope() as session:
                        result = oa.handle(session, merchant=session.get(Merchant, merchant_id),
                                           query=dict(parse_qsl(query)), body=body)
                    outcomes.append(result.outcome)
                except BaseException as exc:  # noqa: BLE001 - reported below
                    errors.append(exc)

            threads = [threading.Thread(target=deliver, args=d) for d in deliveries]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)

            assert errors == []
            assert sorted(outcomes) == ["duplicate"] * (THREADS - 1) + ["processed"]
            with database.scope() as session:
                for model, expected in ((Customer, 1), (OaFollower, 1), (Touch, 1), (ChannelEvent, 1),
                                        (InboundMessage, THREADS)):
                    assert session.scalar(select(func.count(model.id)).where(model.merchant_id == merchant_id)) \
                        == expected, model.__name__
        finally:
            set_database(None)
