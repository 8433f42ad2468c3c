"""The console overview: today's figures on a small dataset, exact, for each role's scope."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from siyu.analytics import service as analytics
from siyu.catalog.models import Sku
from siyu.core import clock
from siyu.core.auth import Role
from tests.factories.catalog import make_product
from tests.factories.customers import make_customer
from tests.factories.merchants import (
    PASSWORD,
    auth_headers,
    make_merchant,
    make_staff,
    make_store,
    principal_of,
)

# 10:00 on 2026-06-10 in Shanghai
NOW = dt.datetime(2026, 6, 10, 2, 0, tzinfo=dt.UTC)
TODAY = dt.date(2026, 6, 10)
SH = clock.SHANGHAI


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=SH).astimezone(dt.UTC)


@pytest.fixture
def frozen():
    with clock.frozen(NOW):
        yield


@pytest.fixture
def shop(db, frozen):
    """Two stores with a guide each; five customers; three products, two of them low on stock."""
    merchant = make_merchant(db, name="数据品牌")
    store_a = make_store(db, merchant=merchant, name="A店")
    store_b = make_store(db, merchant=merchant, name="B店")
    admin = make_staff(db, merchant=merchant, username="boss")
    manager_a = make_staff(db, merchant=merchant, role=Role.STORE_MANAGER, store=store_a, username="mgr-a")
    guide_a = make_staff(db, merchant=merchant, role=Role.GUIDE, store=store_a, username="guide-a")
    guide_b = make_staff(db, merchant=merchant, role=Role.GUIDE, store=store_b, username="guide-b")
    # today (Shanghai): one each for A and B; 00:30 today is still yesterday in UTC
    make_customer(db, merchant=merchant, owner=guide_a, created_at=at(TODAY, 0, 30))
    make_customer(db, merchant=merchant, owner=guide_b, created_at=at(TODAY, 9, 59))
    # 23:59 yesterday (Shanghai) is the same UTC day as the first one, but not today
    make_customer(db, merchant=merchant, owner=guide_a, created_at=at(TODAY - dt.timedelta(days=1), 23, 59))
    make_customer(db, merchant=merchant, owner=guide_a, created_at=at(TODAY - dt.timedelta(days=5), 12))
    # 40 days ago: counted in the total, outside the 30-day trend; no owner, no store
    make_customer(db, merchant=merchant, created_at=at(TODAY - dt.timedelta(days=40), 12))
    # another merchant's customer today is never counted
    other = make_merchant(db)
    make_customer(db, merchant=other, created_at=at(TODAY, 8))
    make_product(db, merchant=other, stock=1)

    low = make_product(db, merchant=merchant, title="低库存面霜", skus=[{"spec": {"容量": "50ml"}, "price_cents": 19900, "stock": 5}])
    mixed = make_product(db, merchant=merchant, title="精华液", skus=[
        {"spec": {"容量": "30ml"}, "price_cents": 29900, "stock": 0},
        {"spec": {"容量": "100ml"}, "price_cents": 59900, "stock": 50}])
    make_product(db, merchant=merchant, title="草稿商品", status="draft", stock=1)
    return {"merchant": merchant, "admin": admin, "manager_a": manager_a, "guide_a": guide_a, "guide_b": guide_b,
            "low": low, "mixed": mixed}



def _low_stock(db, shop) -> list[dict]:
    def sku_id(product) -> int:
        return db.scalars(select(Sku.id).where(Sku.product_id == product.id).order_by(Sku.id)).first()

    return [
        {"sku_id": sku_id(shop["mixed"]), "product_id": shop["mixed"].id, "title": "精华液", "spec": {"容量": "30ml"}, "stock": 0},
        {"sku_id": sku_id(shop["low"]), "product_id": shop["low"].id, "title": "低库存面霜", "spec": {"容量": "50ml"}, "stock": 5},
    ]


def _trend(counts: dict[int, int]) -> list[dict]:
    """30 days ending today; `counts` maps days-ago to a count."""
    return [{"day": (TODAY - dt.timedelta(days=ago)).isoformat(), "count": counts.get(ago, 0)} for ago in range(29, -1, -1)]


def test_brand_overview_figures_are_exact(db, shop):
    ov = analytics.overview(db, actor=principal_of(db, shop["admin"]))
    assert ov.day == TODAY
    assert (ov.new_customers_today, ov.total_customers, ov.products_on_sale) == (2, 5, 2)
    keys = ("sku_id", "product_id", "title", "spec", "stock")
    assert [{k: row[k] for k in keys} for row in ov.low_stock] == _low_stock(db, shop)
    assert len(ov.new_customers_by_day) == 30
    assert ov.new_customers_by_day[-1] == (TODAY, 2)
    assert ov.new_customers_by_day[-2] == (TODAY - dt.timedelta(days=1), 1)
    assert ov.new_customers_by_day[-6] == (TODAY - dt.timedelta(days=5), 1)
    assert sum(n for _d, n in ov.new_customers_by_day) == 4
    assert ov.orders.available is True
    assert (ov.orders.orders, ov.orders.gmv_cents) == (0, 0)


def test_overview_api_answers_the_same_figures(db, client, shop):
    r = client.get("/api/v1/admin/analytics/overview", headers=auth_headers(db, shop["admin"]))
    assert r.status_code == 200
    assert r.json() == {
        "day": "2026-06-10",
        "new_customers_today": 2,
        "total_customers": 5,
        "products_on_sale": 2,
        "low_stock_threshold": 10,
        "low_stock_skus": _low_stock(db, shop),
        "orders_available": True,
        "orders_today": 0,
        "paid_orders_today": 0,
        "gmv_today_cents": 0,
        "pending_shipments": 0,
        "pending_pickups": 0,
        "refunds_waiting": 0,
        "new_customers_by_day": _trend({0: 2, 1: 1, 5: 1}),
    }


def test_a_guide_sees_figures_for_their_own_customers_only(db, client, shop):
    r = client.get("/api/v1/admin/analytics/overview", headers=auth_headers(db, shop["guide_a"]))
    body = r.json()
    assert (body["new_customers_today"], body["total_customers"]) == (1, 3)
    assert body["new_customers_by_day"] == _trend({0: 1, 1: 1, 5: 1})
    # the catalogue is the brand's: the same for everyone
    assert body["products_on_sale"] == 2 and body["low_stock_skus"] == _low_stock(db, shop)

    body = client.get("/api/v1/admin/analytics/overview", headers=auth_headers(db, shop["guide_b"])).json()
    assert (body["new_customers_today"], body["total_customers"]) == (1, 1)
    assert body["new_customers_by_day"] == _trend({0: 1})


def test_a_store_manager_sees_their_stores_customers(db, shop):
    ov = analytics.overview(db, actor=principal_of(db, shop["manager_a"]))
    assert (ov.new_customers_today, ov.total_customers) == (1, 3)


def test_an_agent_admin_sees_their_agents_stores(db, shop):
    from tests.factories.merchants import make_agent

    agent = make_agent(db, merchant=shop["merchant"])
    store = make_store(db, merchant=shop["merchant"], agent=agent)
    make_customer(db, merchant=shop["merchant"], store=store, created_at=at(TODAY, 3))
    agent_admin = make_staff(db, merchant=shop["merchant"], role=Role.AGENT_ADMIN, agent=agent)
    ov = analytics.overview(db, actor=principal_of(db, agent_admin))
    assert (ov.new_customers_today, ov.total_customers) == (1, 1)
    assert ov.new_customers_by_day[-1] == (TODAY, 1)


def test_the_api_needs_a_staff_member(db, client):
    r = client.get("/api/v1/admin/analytics/overview")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


def test_order_figures_come_from_the_orders_domain(db, client, shop):
    from tests.factories.orders import make_order

    customer = make_customer(db, merchant=shop["merchant"], owner=shop["guide_a"], created_at=at(TODAY, 1))
    make_order(db, merchant=shop["merchant"], customer=customer, status="paid", price_cents=12345)
    make_order(db, merchant=shop["merchant"], customer=customer, status="pending_payment", price_cents=500)
    body = client.get("/api/v1/admin/analytics/overview", headers=auth_headers(db, shop["admin"])).json()
    assert (body["orders_today"], body["paid_orders_today"], body["gmv_today_cents"]) == (2, 1, 12345)


def test_without_an_orders_domain_the_figures_are_unavailable_not_zero(db, client, shop, monkeypatch):
    monkeypatch.setattr(analytics, "_has_module", lambda name: False)
    assert analytics.order_figures(db, actor=principal_of(db, shop["admin"])) == analytics.OrderFigures(available=False)
    client.post("/console/login", data={"username": "boss", "password": PASSWORD})
    page = client.get("/console/").text
    assert re.search(r'data-testid="stat-gmv">\s*<div class="label">今日成交额</div>\s*<div class="value">—</div>', page)
    assert "订单功能尚未上线。" in page


def test_the_overview_page_shows_the_figures_a_chart_and_its_table(db, client, shop):
    client.post("/console/login", data={"username": "boss", "password": PASSWORD})
    r = client.get("/console/")
    assert r.status_code == 200
    page = r.text

    def stat(testid: str) -> str:
        return re.search(rf'data-testid="{testid}">.*?<div class="value">([^<]*)</div>', page, re.S).group(1)

    assert (stat("stat-new-customers"), stat("stat-total-customers"), stat("stat-products"), stat("stat-low-stock")) == (
        "2", "5", "2", "2")
    assert (stat("stat-orders"), stat("stat-gmv")) == ("0", "¥0.00")
    assert '<script src="/static/vendor/plotly.min.js' in page
    assert 'id="new-customers-chart"' in page and "Plotly.newPlot" in page
    rows = re.findall(r"<tr><td>(\d{4}-\d\d-\d\d)</td><td class=\"num\">(\d+)</td></tr>", page)
    assert len(rows) == 30 and rows[0] == ("2026-06-10", "2") and rows[1] == ("2026-06-09", "1")
    assert "低库存面霜" in page and "容量: 30ml" in page
    assert 'class="active">概览<' in page


def test_the_overview_page_for_a_guide(db, client, shop):
    client.post("/console/login", data={"username": "guide-a", "password": PASSWORD})
    page = client.get("/console/").text
    assert "以下为你自己客户的数据。" in page
    assert re.search(r'data-testid="stat-total-customers">.*?<div class="value">3</div>', page, re.S)


def test_plotly_js_is_served_from_the_installed_package(client):
    r = client.get("/static/vendor/plotly.min.js")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/javascript")
    assert "max-age=2592000" in r.headers["cache-control"]
    assert b"plotly.js" in r.content[:2000]
    assert r.content == analytics_js_bytes()
    # and it is not a copy in the repository
    repo_src = Path(__file__).resolve().parents[2] / "src"
    assert not list(repo_src.rglob("plotly*.js"))


def analytics_js_bytes() -> bytes:
    from siyu.analytics.views import plotly_js_path

    return plotly_js_path().read_bytes()
