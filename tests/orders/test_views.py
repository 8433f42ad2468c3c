"""The orders pages: the H5 cart, checkout, orders and address book, and the console's order list,
detail, shipping, pickup verification, after-sales and CSV import/export."""

from __future__ import annotations

import re
from urllib.parse import parse_qs

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.catalog import service as catalog
from siyu.core.auth import Role
from siyu.customers.deps import cookie_name
from siyu.customers.signin import issue_customer_token
from siyu.merchants.models import Merchant
from siyu.orders import service
from siyu.orders.models import CartLine, CustomerAddress, Order, RefundRequest
from siyu.payments.models import Payment
from tests.factories.customers import make_customer
from tests.factories.merchants import PASSWORD, make_merchant, make_staff, make_store
from tests.factories.orders import customer_principal, make_order, make_sku, pay, pickup

NEW_ADDRESS = {"name": "李四", "phone": "13900001111", "province": "浙江省", "city": "杭州市", "district": "西湖区",
               "detail": "文三路 100 号"}


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def hidden(html: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]*)"', html).group(1)


def count(db: Session, model, *where) -> int:
    return db.scalar(select(func.count()).select_from(model).where(*where))


def stock(db: Session, sku) -> int:
    return catalog.stock_of(db, merchant_id=sku.merchant_id, sku_ids=[sku.id])[sku.id]


def shop_login(db: Session, client: TestClient, merchant: Merchant, customer) -> str:
    """Sign the customer in with the H5 cookie; returns the form token of their session."""
    client.cookies.set(cookie_name(merchant.slug), issue_customer_token(db, customer))
    return csrf(client.get(f"/shop/{merchant.slug}/addresses").text)


def console_login(client: TestClient, staff) -> str:
    r = client.post("/console/login", data={"username": staff.username, "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303
    return csrf(client.get("/console/orders").text)


@pytest.fixture
def buyer(db: Session, merchant: Merchant):
    return make_customer(db, merchant=merchant, nickname="买家")


def shop(merchant: Merchant) -> str:
    return f"/shop/{merchant.slug}"


# ==================================================================== H5


def test_pages_need_a_signed_in_customer(client, db, merchant) -> None:
    for path in ("/cart", "/checkout?sku_id=1&quantity=1", "/orders", "/orders/1", "/addresses"):
        r = client.get(shop(merchant) + path, follow_redirects=False)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith(f"{shop(merchant)}/login?next=%2Fshop%2F{merchant.slug}%2F"), path
    r = client.post(f"{shop(merchant)}/cart/add", data={"sku_id": "1"}, follow_redirects=False)
    assert r.status_code == 303 and "/login?next=" in r.headers["location"]


def test_cart_add_change_select_remove(client, db, merchant, buyer) -> None:
    # given two SKUs and a signed-in customer
    tea = make_sku(db, merchant=merchant, price_cents=1250, title="龙井")
    cup = make_sku(db, merchant=merchant, price_cents=3000, title="茶杯")
    token = shop_login(db, client, merchant, buyer)
    assert 'data-testid="cart-empty"' in client.get(f"{shop(merchant)}/cart").text
    # when both are added (tea twice)
    for sku, qty in ((tea, "1"), (cup, "1"), (tea, "2")):
        r = client.post(f"{shop(merchant)}/cart/add", data={"csrf_token": token, "sku_id": str(sku.id), "quantity": qty},
                        follow_redirects=False)
        assert (r.status_code, r.headers["location"]) == (303, f"{shop(merchant)}/cart?ok=added")
    # then the cart shows them with the total of the selected lines
    page = client.get(f"{shop(merchant)}/cart").text
    assert page.count('data-testid="cart-line"') == 2 and "龙井" in page and "茶杯" in page
    assert re.search(r'data-testid="cart-total">¥67.50<', page)
    lines = {ln.sku_id: ln for ln in db.scalars(select(CartLine).where(CartLine.customer_id == buyer.id))}
    assert lines[tea.id].quantity == 3
    # when the cup is unselected and the tea set to 4
    r = client.post(f"{shop(merchant)}/cart/lines/{lines[cup.id].id}", data={"csrf_token": token, "selected": "0",
                                                                         "quantity": "1"}, follow_redirects=False)
    assert r.status_code == 303
    client.post(f"{shop(merchant)}/cart/lines/{lines[tea.id].id}",
                data={"csrf_token": token, "selected": ["0", "1"], "quantity": "4"})
    page = client.get(f"{shop(merchant)}/cart").text
    assert re.search(r'data-testid="cart-total">¥50.00<', page)
    db.expire_all()
    assert (lines[tea.id].quantity, lines[tea.id].selected, lines[cup.id].selected) == (4, True, False)
    # and select all again, then remove the tea
    client.post(f"{shop(merchant)}/cart/select-all", data={"csrf_token": token, "selected": "1"})
    r = client.post(f"{shop(merchant)}/cart/lines/{lines[tea.id].id}/remove", data={"csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 303
    page = client.get(f"{shop(merchant)}/cart").text
    assert page.count('data-testid="cart-line"') == 1 and re.search(r'data-testid="cart-total">¥30.00<', page)


def test_cart_bad_input_is_4xx_and_changes_nothing(client, db, merchant, buyer) -> None:
    sku = make_sku(db, merchant=merchant)
    off = make_sku(db, merchant=merchant, status="off_sale")
    token = shop_login(db, client, merchant, buyer)
    add = f"{shop(merchant)}/cart/add"
    assert client.post(add, data={"sku_id": str(sku.id)}).status_code == 403  # no form token
    assert client.post(add, data={"csrf_token": token, "sku_id": "abc"}).status_code == 422
    assert client.post(add, data={"csrf_token": token, "sku_id": "9" * 40}).status_code == 422
    assert client.post(add, data={"csrf_token": token, "sku_id": str(sku.id), "quantity": "1000"}).status_code == 422
    assert client.post(add, data={"csrf_token": token, "sku_id": str(off.id)}).status_code == 409
    assert client.post(add, data={"csrf_token": token, "sku_id": "99999999"}).status_code == 409
    assert count(db, CartLine) == 0
    assert client.post(f"{shop(merchant)}/cart/lines/99999999", data={"csrf_token": token}).status_code == 404
    assert client.post(f"{shop(merchant)}/cart/lines/abc", data={"csrf_token": token}).status_code == 422
    # another customer's line is not found
    other = make_customer(db, merchant=merchant)
    line = service.add_to_cart(db, actor=customer_principal(other), sku_id=sku.id, quantity=1)
    assert client.post(f"{shop(merchant)}/cart/lines/{line.id}/remove", data={"csrf_token": token}).status_code == 404
    assert count(db, CartLine) == 1


def test_buy_now_with_a_new_address_places_one_order_and_pays(client, db, merchant, buyer) -> None:
    # given a product with ¥6 flat shipping
    merchant.settings = {"shipping": {"flat_cents": 600}}
    sku = make_sku(db, merchant=merchant, price_cents=2990, stock=5, title="好茶")
    shop_login(db, client, merchant, buyer)
    # when the customer opens checkout from the product page's buy form
    r = client.get(f"{shop(merchant)}/checkout?sku_id={sku.id}&quantity=2")
    assert r.status_code == 200
    page = r.text
    assert "好茶" in page and 'data-testid="new-address-fields"' in page and 'data-testid="update-total"' in page
    form = {"csrf_token": csrf(page), "idem_key": hidden(page, "idem_key"), "type": "delivery",
            "sku_id": str(sku.id), "quantity": "2", "address_id": "new", "save_address": "1", **NEW_ADDRESS}
    # and asks for the total first
    r = client.post(f"{shop(merchant)}/checkout", data={**form, "action": "preview"})
    assert r.status_code == 200
    assert re.search(r'data-testid="shipping">¥6.00<', r.text) and re.search(r'data-testid="payable">¥65.80<', r.text)
    assert count(db, Order) == 0
    # and places the order (twice: a double submit)
    r = client.post(f"{shop(merchant)}/checkout", data={**form, "action": "place"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    again = client.post(f"{shop(merchant)}/checkout", data={**form, "action": "place"}, follow_redirects=False)
    # then one order, one reserved stock, the address saved once, and both go to the same pay page
    assert count(db, Order) == 1
    order = db.scalars(select(Order)).one()
    assert (order.status, order.total_cents, order.fulfilment["address"]) == ("pending_payment", 6580, NEW_ADDRESS)
    assert stock(db, sku) == 3
    assert count(db, CustomerAddress, CustomerAddress.customer_id == buyer.id) == 1
    payment = db.scalars(select(Payment).where(Payment.order_id == order.id)).one()
    assert r.headers["location"] == again.headers["location"] == f"{shop(merchant)}/pay/{payment.id}"
    # when the customer pays on the sandbox pay page
    pay_page = client.get(r.headers["location"]).text
    r = client.post(f"{shop(merchant)}/pay/{payment.id}", data={"csrf_token": csrf(pay_page)}, follow_redirects=False)
    assert r.headers["location"] == f"{shop(merchant)}/orders/{order.id}?paid=1"
    # then the order page says it is paid
    page = client.get(r.headers["location"]).text
    assert re.search(r'data-testid="order-status">已支付<', page) and "收到付款" in page
    assert order.order_no in page and "¥65.80" in page


def test_checkout_from_the_cart_with_store_pickup(client, db, merchant, buyer) -> None:
    near = make_store(db, merchant=merchant, name="近店", latitude=31.23, longitude=121.47)
    far = make_store(db, merchant=merchant, name="远店", latitude=39.90, longitude=116.40)
    tea = make_sku(db, merchant=merchant, price_cents=1000, title="红茶")
    cup = make_sku(db, merchant=merchant, price_cents=500, title="杯子")
    left = make_sku(db, merchant=merchant, price_cents=700, title="留在购物车")
    actor = customer_principal(buyer)
    service.add_to_cart(db, actor=actor, sku_id=tea.id, quantity=2)
    service.add_to_cart(db, actor=actor, sku_id=cup.id, quantity=1)
    unselected = service.add_to_cart(db, actor=actor, sku_id=left.id, quantity=1)
    service.update_cart_line(db, unselected.id, actor=actor, selected=False)
    shop_login(db, client, merchant, buyer)
    # the pickup tab lists the stores, nearest first from Beijing
    page = client.get(f"{shop(merchant)}/checkout?type=pickup&lat=39.9&lng=116.4").text
    assert page.index("远店") < page.index("近店") and "留在购物车" not in page
    assert re.search(r'data-testid="payable">¥25.00<', page)
    # when the customer places the order for pickup at the near store (a double submit)
    form = {"csrf_token": csrf(page), "idem_key": hidden(page, "idem_key"), "type": "pickup", "store_id": str(near.id),
            "from_cart": "1", "cart_item": re.findall(r'name="cart_item" value="([^"]+)"', page), "action": "place"}
    assert sorted(form["cart_item"]) == sorted([f"{tea.id}:2", f"{cup.id}:1"])
    r = client.post(f"{shop(merchant)}/checkout", data=form, follow_redirects=False)
    assert r.status_code == 303 and "/pay/" in r.headers["location"]
    again = client.post(f"{shop(merchant)}/checkout", data=form, follow_redirects=False)
    assert again.headers["location"] == r.headers["location"]
    # then one order, for pickup there, and only the bought lines left the cart
    order = db.scalars(select(Order)).one()
    assert (order.fulfilment_type, order.pickup_store_id, order.total_cents) == ("pickup", near.id, 2500)
    assert [ln.sku_id for ln in db.scalars(select(CartLine).where(CartLine.customer_id == buyer.id))] == [left.id]
    # and once paid, the order page shows the pickup code with its QR
    pay(db, order)
    page = client.get(f"{shop(merchant)}/orders/{order.id}").text
    assert re.search(rf'data-testid="pickup-code">{order.pickup_code}<', page) and "<svg" in page
    assert "待自提" in page and "近店" in page
    assert far.id  # the far store was offered but not chosen


def test_checkout_out_of_stock_keeps_what_was_typed(client, db, merchant, buyer) -> None:
    sku = make_sku(db, merchant=merchant, stock=1, title="限量款")
    shop_login(db, client, merchant, buyer)
    page = client.get(f"{shop(merchant)}/checkout?sku_id={sku.id}&quantity=2")
    assert page.status_code == 409 and "限量款 库存不足：仅剩 1 件" in page.text
    r = client.post(f"{shop(merchant)}/checkout", data={
        "csrf_token": csrf(page.text), "idem_key": hidden(page.text, "idem_key"), "type": "delivery",
        "sku_id": str(sku.id), "quantity": "2", "address_id": "new", "save_address": "1", **NEW_ADDRESS,
        "note": "请尽快", "action": "place"})
    assert r.status_code == 409
    assert "库存不足" in r.text or "Not enough stock" in r.text
    assert "限量款" in r.text and 'value="文三路 100 号"' in r.text and 'value="请尽快"' in r.text
    assert count(db, Order) == 0 and count(db, CustomerAddress) == 0 and stock(db, sku) == 1


def test_checkout_bad_input_is_4xx(client, db, merchant, buyer) -> None:
    sku = make_sku(db, merchant=merchant)
    token = shop_login(db, client, merchant, buyer)
    for query in ("sku_id=abc", f"sku_id={sku.id}&quantity=0", f"sku_id={sku.id}&quantity=x", "sku_id=" + "9" * 30):
        assert client.get(f"{shop(merchant)}/checkout?{query}").status_code == 422, query
    assert client.get(f"{shop(merchant)}/checkout?sku_id=99999999").status_code == 409
    # an empty cart goes back to the cart
    r = client.get(f"{shop(merchant)}/checkout", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("/cart?err=empty")
    # a bad address: the errors beside the fields, nothing placed
    r = client.post(f"{shop(merchant)}/checkout", data={
        "csrf_token": token, "type": "delivery", "sku_id": str(sku.id), "quantity": "1", "address_id": "new",
        "name": "", "phone": "12", "province": "x" * 300, "city": "杭州", "detail": "路", "action": "place"})
    assert r.status_code == 422
    for field in ("name", "phone", "province"):
        assert f'data-testid="error-{field}"' in r.text
    assert 'value="杭州"' in r.text
    # a pickup without a store; an unknown store; someone else's address
    r = client.post(f"{shop(merchant)}/checkout", data={"csrf_token": token, "type": "pickup", "sku_id": str(sku.id),
                                                         "action": "place"})
    assert r.status_code == 422 and 'data-testid="error-store_id"' in r.text
    r = client.post(f"{shop(merchant)}/checkout", data={"csrf_token": token, "type": "pickup", "sku_id": str(sku.id),
                                                         "store_id": "99999999", "action": "place"})
    assert r.status_code == 422
    other = make_customer(db, merchant=merchant)
    theirs = service.create_address(db, actor=customer_principal(other), **NEW_ADDRESS)
    mine = service.create_address(db, actor=customer_principal(buyer), **NEW_ADDRESS)
    r = client.post(f"{shop(merchant)}/checkout", data={"csrf_token": token, "type": "delivery", "sku_id": str(sku.id),
                                                         "address_id": str(theirs.id), "action": "place"})
    assert r.status_code == 422 and 'data-testid="error-address_id"' in r.text
    # no form token; mangled cart items
    r = client.post(f"{shop(merchant)}/checkout", data={"type": "delivery", "sku_id": str(sku.id),
                                                         "address_id": str(mine.id)})
    assert r.status_code == 403
    for bad in ("x:1", f"{sku.id}:0", f"{sku.id}", "1:" + "9" * 40):
        r = client.post(f"{shop(merchant)}/checkout", data={"csrf_token": token, "from_cart": "1", "cart_item": bad,
                                                             "address_id": str(mine.id), "action": "place"})
        assert r.status_code == 422, bad
    assert count(db, Order) == 0
    # the same form key sent again with other choices: refused, with a fresh key to try again
    form = {"csrf_token": token, "type": "delivery", "sku_id": str(sku.id), "address_id": str(mine.id),
            "idem_key": "key-0123456789", "action": "place"}
    assert client.post(f"{shop(merchant)}/checkout", data=form, follow_redirects=False).status_code == 303
    r = client.post(f"{shop(merchant)}/checkout", data={**form, "note": "改了"}, follow_redirects=False)
    assert r.status_code == 422 and hidden(r.text, "idem_key") != "key-0123456789" and 'value="改了"' in r.text
    assert count(db, Order) == 1


def test_orders_list_detail_pay_and_cancel(client, db, merchant, buyer) -> None:
    pending = make_order(db, merchant=merchant, customer=buyer, price_cents=1800)
    shipped = make_order(db, merchant=merchant, customer=buyer, status="shipped")
    token = shop_login(db, client, merchant, buyer)
    # the list with status tabs
    page = client.get(f"{shop(merchant)}/orders").text
    assert page.count('data-testid="order-card"') == 2
    page = client.get(f"{shop(merchant)}/orders?status=shipped").text
    assert page.count('data-testid="order-card"') == 1 and f"/orders/{shipped.id}" in page
    assert client.get(f"{shop(merchant)}/orders?status=nonsense&cursor=%%%").status_code == 200
    # pay now: starts a sandbox payment, and a second click reuses it
    r1 = client.post(f"{shop(merchant)}/orders/{pending.id}/pay", data={"csrf_token": token}, follow_redirects=False)
    r2 = client.post(f"{shop(merchant)}/orders/{pending.id}/pay", data={"csrf_token": token}, follow_redirects=False)
    assert r1.status_code == 303 and r1.headers["location"] == r2.headers["location"]
    assert count(db, Payment, Payment.order_id == pending.id) == 1
    # cancel the pending order
    r = client.post(f"{shop(merchant)}/orders/{pending.id}/cancel", data={"csrf_token": token}, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, f"{shop(merchant)}/orders/{pending.id}?ok=cancelled")
    db.refresh(pending)
    assert pending.status == "cancelled"
    # cancelling a shipped order is refused with a message; confirming receipt completes it
    r = client.post(f"{shop(merchant)}/orders/{shipped.id}/cancel", data={"csrf_token": token})
    assert r.status_code == 409 and 'class="flash error"' in r.text
    r = client.post(f"{shop(merchant)}/orders/{shipped.id}/confirm-receipt", data={"csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 303
    db.refresh(shipped)
    assert shipped.status == "completed"
    page = client.get(f"{shop(merchant)}/orders/{shipped.id}").text
    assert 'data-testid="timeline"' in page and "已完成" in page


def test_refund_request_form(client, db, merchant, buyer) -> None:
    sku_a = make_sku(db, merchant=merchant, price_cents=1000, title="甲")
    sku_b = make_sku(db, merchant=merchant, price_cents=2000, title="乙")
    order = make_order(db, merchant=merchant, customer=buyer, items=[(sku_a, 3), (sku_b, 1)], status="paid")
    lines = service.order_lines(db, order.id)
    token = shop_login(db, client, merchant, buyer)
    page = client.get(f"{shop(merchant)}/orders/{order.id}").text
    assert 'data-testid="refund-form"' in page
    url = f"{shop(merchant)}/orders/{order.id}/refunds"
    # bad input: the errors beside the fields, nothing requested
    r = client.post(url, data={"csrf_token": token, f"qty_{lines[0].id}": "0", f"qty_{lines[1].id}": "0", "reason": ""})
    assert r.status_code == 422 and 'data-testid="error-lines"' in r.text and 'data-testid="error-reason"' in r.text
    r = client.post(url, data={"csrf_token": token, f"qty_{lines[0].id}": "x", "reason": "坏了"})
    assert r.status_code == 422 and 'value="x"' in r.text
    r = client.post(url, data={"csrf_token": token, f"qty_{lines[0].id}": "5", "reason": "坏了"})
    assert r.status_code == 409
    assert count(db, RefundRequest) == 0
    # when two units of the first line are asked back
    r = client.post(url, data={"csrf_token": token, f"qty_{lines[0].id}": "2", f"qty_{lines[1].id}": "0",
                               "reason": "有破损"}, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, f"{url[:-8]}?ok=refund")
    refund = db.scalars(select(RefundRequest)).one()
    assert (refund.amount_cents, refund.status, refund.reason) == (2000, "pending", "有破损")
    page = client.get(f"{shop(merchant)}/orders/{order.id}").text
    assert 'data-testid="refund-item"' in page and "待审核" in page and "甲 × 2" in page
    assert 'max="1"' in page  # one unit of the first line is left to ask for


def test_another_customers_order_is_not_found(client, db, merchant, buyer) -> None:
    theirs = make_order(db, merchant=merchant, status="paid")
    foreign = make_order(db, merchant=make_merchant(db), status="paid")
    token = shop_login(db, client, merchant, buyer)
    for order in (theirs, foreign):
        assert client.get(f"{shop(merchant)}/orders/{order.id}").status_code == 404
        for action in ("cancel", "pay", "confirm-receipt", "refunds"):
            r = client.post(f"{shop(merchant)}/orders/{order.id}/{action}", data={"csrf_token": token, "reason": "x"})
            assert r.status_code == 404, action
    assert client.get(f"{shop(merchant)}/orders/abc").status_code == 422
    assert client.get(f"{shop(merchant)}/orders/{2**60}").status_code == 422
    assert count(db, RefundRequest) == 0


def test_address_book(client, db, merchant, buyer) -> None:
    token = shop_login(db, client, merchant, buyer)
    url = f"{shop(merchant)}/addresses"
    r = client.post(url, data={"csrf_token": token, **NEW_ADDRESS, "phone": "abc"})
    assert r.status_code == 422 and 'data-testid="error-phone"' in r.text and 'value="文三路 100 号"' in r.text
    assert count(db, CustomerAddress) == 0
    for detail in ("一号", "二号"):
        r = client.post(url, data={"csrf_token": token, **NEW_ADDRESS, "detail": detail}, follow_redirects=False)
        assert r.status_code == 303
    first, second = db.scalars(select(CustomerAddress).order_by(CustomerAddress.id)).all()
    assert (first.is_default, second.is_default) == (True, False)
    client.post(f"{url}/{second.id}/default", data={"csrf_token": token})
    db.expire_all()
    assert (first.is_default, second.is_default) == (False, True)
    client.post(f"{url}/{second.id}/delete", data={"csrf_token": token})
    db.expire_all()
    assert [a.id for a in db.scalars(select(CustomerAddress))] == [first.id] and first.is_default
    other = service.create_address(db, actor=customer_principal(make_customer(db, merchant=merchant)), **NEW_ADDRESS)
    assert client.post(f"{url}/{other.id}/delete", data={"csrf_token": token}).status_code == 404
    page = client.get(url).text
    assert page.count('data-testid="address"') == 1


# ==================================================================== console


def test_console_list_filters_pagination_and_export(client, db, merchant) -> None:
    admin = make_staff(db, merchant=merchant)
    store = make_store(db, merchant=merchant, name="西湖店")
    alice = make_customer(db, merchant=merchant, nickname="alice")
    paid = make_order(db, merchant=merchant, customer=alice, status="paid")
    pending = make_order(db, merchant=merchant, status="pending_payment")
    picked = make_order(db, merchant=merchant, status="ready_for_pickup", fulfilment=pickup(store))
    foreign = make_order(db, merchant=make_merchant(db), status="paid")
    console_login(client, admin)
    page = client.get("/console/orders").text
    assert page.count('data-testid="order-row"') == 3 and foreign.order_no not in page
    assert 'href="/console/orders"' in page  # the menu entry
    cases = {"status=paid": [paid], "fulfilment_type=pickup": [picked], f"store_id={store.id}": [picked],
             f"customer_id={alice.id}": [paid], f"q={pending.order_no}": [pending],
             "created_from=2000-01-01&created_to=2999-12-31&status=pending_payment": [pending]}
    for query, expected in cases.items():
        page = client.get(f"/console/orders?{query}").text
        assert page.count('data-testid="order-row"') == len(expected), query
        assert all(o.order_no in page for o in expected), query
        # the export link keeps the filters
        export = re.search(r'href="/console/orders/export\.csv\?([^"]+)"', page).group(1).replace("&amp;", "&")
        assert parse_qs(export) == parse_qs(query), query
    # bad filters: shown beside the field, ignored, never a 500
    r = client.get("/console/orders?created_from=yesterday&customer_id=x&status=nope&cursor=%%%")
    assert r.status_code == 422 and 'data-testid="error-created_from"' in r.text
    assert r.text.count('data-testid="order-row"') == 3
    # pagination: 50 a page
    for _ in range(50):
        make_order(db, merchant=merchant, customer=alice)
    page = client.get("/console/orders").text
    assert page.count('data-testid="order-row"') == 50
    next_url = re.search(r'href="([^"]+)" data-testid="next-page"', page).group(1).replace("&amp;", "&")
    assert client.get(next_url).text.count('data-testid="order-row"') == 3
    # export with the same filters
    r = client.get("/console/orders/export.csv?status=paid")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = r.text.lstrip("\ufeff").strip().splitlines()
    assert rows[0].startswith("order_no,") and len(rows) == 2 and rows[1].startswith(paid.order_no)
    assert client.get("/console/orders/export.csv?created_from=bad").status_code == 422


def test_console_detail_and_ship(client, db, merchant) -> None:
    admin = make_staff(db, merchant=merchant, name="王管理")
    guide = make_staff(db, merchant=merchant, role=Role.GUIDE, store=make_store(db, merchant=merchant), name="小导")
    customer = make_customer(db, merchant=merchant, nickname="收件人甲", owner=guide)
    order = make_order(db, merchant=merchant, customer=customer, status="paid", price_cents=4500)
    console_login(client, admin)
    page = client.get(f"/console/orders/{order.id}").text
    assert re.search(r'data-testid="order-status">已支付<', page) and "收件人甲" in page and "小导" in page
    assert 'data-testid="ship-form"' in page and "¥45.00" in page and 'data-testid="timeline"' in page
    # bad input: errors beside the fields, what was typed kept, nothing shipped
    r = client.post(f"/console/orders/{order.id}/ship", data={"csrf_token": csrf(page), "carrier": "顺丰",
                                                              "tracking_no": "!!"})
    assert r.status_code == 422 and 'data-testid="error-tracking_no"' in r.text and 'value="顺丰"' in r.text
    db.refresh(order)
    assert order.status == "paid"
    # ship
    r = client.post(f"/console/orders/{order.id}/ship", data={"csrf_token": csrf(page), "carrier": "顺丰",
                                                              "tracking_no": "SF100200300"}, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, f"/console/orders/{order.id}?ok=shipped")
    db.refresh(order)
    assert (order.status, order.carrier, order.tracking_no) == ("shipped", "顺丰", "SF100200300")
    page = client.get(r.headers["location"]).text
    assert "订单已发货" in page or "The order was shipped." in page
    assert "王管理" in page and 'data-testid="ship-form"' not in page
    # shipping again is refused with a message
    r = client.post(f"/console/orders/{order.id}/ship", data={"csrf_token": csrf(page), "carrier": "顺丰",
                                                              "tracking_no": "SF100200300"})
    assert r.status_code == 409
    # unknown and foreign orders, bad ids, no CSRF
    foreign = make_order(db, merchant=make_merchant(db), status="paid")
    assert client.get(f"/console/orders/{foreign.id}").status_code == 404
    assert client.get("/console/orders/abc").status_code == 422
    assert client.post(f"/console/orders/{foreign.id}/ship", data={"csrf_token": csrf(page), "carrier": "x",
                                                                   "tracking_no": "SF1234"}).status_code == 404
    assert client.post(f"/console/orders/{order.id}/ship", data={"carrier": "x"}).status_code == 403


def test_guide_sees_only_their_customers_orders(client, db, merchant) -> None:
    store = make_store(db, merchant=merchant)
    guide = make_staff(db, merchant=merchant, role=Role.GUIDE, store=store)
    mine = make_order(db, merchant=merchant, customer=make_customer(db, merchant=merchant, owner=guide), status="paid")
    other = make_order(db, merchant=merchant, status="paid")
    console_login(client, guide)
    page = client.get("/console/orders").text
    assert mine.order_no in page and other.order_no not in page
    assert 'data-testid="export-csv"' not in page  # guides may not export
    assert client.get(f"/console/orders/{other.id}").status_code == 404
    assert client.get(f"/console/orders/{mine.id}").status_code == 200


def test_verify_pickup_only_at_the_right_store(client, db, merchant) -> None:
    here = make_store(db, merchant=merchant, name="本店")
    there = make_store(db, merchant=merchant, name="别店")
    manager_here = make_staff(db, merchant=merchant, role=Role.STORE_MANAGER, store=here)
    manager_there = make_staff(db, merchant=merchant, role=Role.STORE_MANAGER, store=there)
    order = make_order(db, merchant=merchant, status="ready_for_pickup", fulfilment=pickup(here))
    code = order.pickup_code
    # the other store's manager finds nothing and cannot verify
    token = console_login(client, manager_there)
    r = client.post("/console/orders/verify", data={"csrf_token": token, "action": "find", "code": code})
    assert r.status_code == 404 and 'data-testid="error-code"' in r.text
    r = client.post("/console/orders/verify", data={"csrf_token": token, "action": "verify", "code": code,
                                                    "order_id": str(order.id)})
    assert r.status_code == 404
    db.refresh(order)
    assert order.status == "ready_for_pickup"
    # the right store's manager: bad codes are reported, the right one finds and verifies the order
    client.cookies.clear()
    token = console_login(client, manager_here)
    r = client.post("/console/orders/verify", data={"csrf_token": token, "action": "find", "code": "12"})
    assert r.status_code == 422 and 'value="12"' in r.text
    wrong = "000000" if code != "000000" else "111111"
    r = client.post(f"/console/orders/{order.id}/verify", data={"csrf_token": token, "code": wrong})
    assert r.status_code == 409 and 'data-testid="error-code"' in r.text
    r = client.post("/console/orders/verify", data={"csrf_token": token, "action": "find", "code": code})
    assert r.status_code == 200 and 'data-testid="found-order"' in r.text and order.order_no in r.text
    r = client.post("/console/orders/verify", data={"csrf_token": token, "action": "verify", "code": code,
                                                    "order_id": str(order.id)}, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, f"/console/orders/verify?ok=verified&order={order.id}")
    db.refresh(order)
    assert order.status == "completed"
    assert 'data-testid="verified"' in client.get(r.headers["location"]).text
    # from the detail page as well, for another order
    second = make_order(db, merchant=merchant, status="ready_for_pickup", fulfilment=pickup(here))
    r = client.post(f"/console/orders/{second.id}/verify", data={"csrf_token": token, "code": second.pickup_code},
                    follow_redirects=False)
    assert r.status_code == 303
    db.refresh(second)
    assert second.status == "completed"


def test_refund_review_approve_and_reject(client, db, merchant) -> None:
    admin = make_staff(db, merchant=merchant)
    sku = make_sku(db, merchant=merchant, price_cents=1000, stock=10)
    order = make_order(db, merchant=merchant, items=[(sku, 3)], status="paid")
    customer = customer_principal(_customer(db, order))
    line = service.order_lines(db, order.id)[0]
    first = service.request_refund(db, order.id, actor=customer, reason="少了一件", lines=[(line.id, 1)])
    second = service.request_refund(db, order.id, actor=customer, reason="不想要", lines=[(line.id, 1)])
    token = console_login(client, admin)
    # the after-sales list shows the waiting ones first
    page = client.get("/console/orders/refunds").text
    assert page.count('data-testid="refund-row"') == 2 and "不想要" in page
    # approving asks once and says what will happen
    page = client.get(f"/console/orders/refunds/{first.id}/approve").text
    assert 'data-testid="approve-consequence"' in page and "¥10.00" in page and 'data-testid="restock"' in page
    r = client.post(f"/console/orders/refunds/{first.id}/approve", data={"csrf_token": token, "restock": "1"},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith(f"/console/orders/{order.id}?ok=refund_approved")
    db.expire_all()
    assert (db.get(RefundRequest, first.id).status, db.get(Order, order.id).refunded_cents) == ("refunded", 1000)
    assert stock(db, sku) == 8  # 10 - 3 bought + 1 restocked
    # rejecting needs a reason
    r = client.post(f"/console/orders/refunds/{second.id}/reject", data={"csrf_token": token, "reason": ""})
    assert r.status_code == 422 and 'data-testid="error-reject"' in r.text
    assert db.get(RefundRequest, second.id).status == "pending"
    r = client.post(f"/console/orders/refunds/{second.id}/reject", data={"csrf_token": token, "reason": "已超时"},
                    follow_redirects=False)
    assert r.status_code == 303
    db.expire_all()
    assert (db.get(RefundRequest, second.id).status, db.get(RefundRequest, second.id).reject_reason) == (
        "rejected", "已超时")
    # deciding twice is refused; the waiting list is now empty
    r = client.post(f"/console/orders/refunds/{second.id}/approve", data={"csrf_token": token})
    assert r.status_code == 409
    assert 'data-testid="refund-row"' not in client.get("/console/orders/refunds").text
    assert client.get("/console/orders/refunds?status=all").text.count('data-testid="refund-row"') == 2
    assert client.get("/console/orders/refunds/99999999/approve").status_code == 404
    # a guide may not review refunds
    guide = make_staff(db, merchant=merchant, role=Role.GUIDE, store=make_store(db, merchant=merchant))
    client.cookies.clear()
    console_login(client, guide)
    assert client.get(f"/console/orders/refunds/{second.id}/approve").status_code == 404


def _customer(db: Session, order: Order):
    from siyu.customers.models import Customer

    return db.get(Customer, order.customer_id)


def test_console_cancel_asks_first(client, db, merchant) -> None:
    admin = make_staff(db, merchant=merchant)
    sku = make_sku(db, merchant=merchant, stock=5)
    order = make_order(db, merchant=merchant, items=[(sku, 2)])
    token = console_login(client, admin)
    page = client.get(f"/console/orders/{order.id}/cancel").text
    assert 'data-testid="confirm-cancel"' in page
    # without the confirmation: back to the question, nothing cancelled
    r = client.post(f"/console/orders/{order.id}/cancel", data={"csrf_token": token}, follow_redirects=False)
    assert r.headers["location"] == f"/console/orders/{order.id}/cancel"
    db.refresh(order)
    assert order.status == "pending_payment"
    r = client.post(f"/console/orders/{order.id}/cancel", data={"csrf_token": token, "confirm": "yes", "reason": "x" * 41})
    assert r.status_code == 422
    r = client.post(f"/console/orders/{order.id}/cancel", data={"csrf_token": token, "confirm": "yes", "reason": "缺货"},
                    follow_redirects=False)
    assert r.status_code == 303
    db.refresh(order)
    assert (order.status, order.cancel_reason, stock(db, sku)) == ("cancelled", "缺货", 5)
    r = client.post(f"/console/orders/{order.id}/cancel", data={"csrf_token": token, "confirm": "yes"})
    assert r.status_code == 409


def test_bulk_ship_upload_reports_each_row(client, db, merchant) -> None:
    admin = make_staff(db, merchant=merchant)
    a = make_order(db, merchant=merchant, status="paid")
    b = make_order(db, merchant=merchant, status="paid")
    token = console_login(client, admin)
    text = f"order_no,carrier,tracking_no\n{a.order_no},顺丰,SF0001\nNOPE,顺丰,SF0002\n{b.order_no},中通,ZT0003\n,,\n"
    r = client.post("/console/orders/bulk-ship", data={"csrf_token": token},
                    files={"file": ("ship.csv", text.encode("utf-8-sig"), "text/csv")})
    assert r.status_code == 200
    assert r.text.count('data-testid="bulk-row"') == 3 and r.text.count('class="failed"') == 1
    db.expire_all()
    assert (db.get(Order, a.id).status, db.get(Order, b.id).status) == ("shipped", "shipped")
    assert db.get(Order, b.id).tracking_no == "ZT0003"
    # pasted rows work too; an empty upload, a binary file and no token are refused
    c = make_order(db, merchant=merchant, status="paid")
    r = client.post("/console/orders/bulk-ship", data={"csrf_token": token, "csv": f"{c.order_no},EMS,EM123456"})
    assert r.status_code == 200 and r.text.count('data-testid="bulk-row"') == 1
    db.expire_all()
    assert db.get(Order, c.id).status == "shipped"
    assert client.post("/console/orders/bulk-ship", data={"csrf_token": token, "csv": " "}).status_code == 422
    r = client.post("/console/orders/bulk-ship", data={"csrf_token": token},
                    files={"file": ("x.csv", b"\xff\xfe\x00\x81\x00", "text/csv")})
    assert r.status_code in (200, 422)
    d = make_order(db, merchant=merchant, status="paid")
    r = client.post("/console/orders/bulk-ship", data={"csrf_token": token},
                    files={"file": ("mac.csv", f"order_no,carrier,tracking_no\r{d.order_no},EMS,EM654321\r".encode(),
                                    "text/csv")})
    assert r.status_code == 200 and r.text.count('data-testid="bulk-row"') == 1
    assert client.post("/console/orders/bulk-ship", data={"csrf_token": token, "csv": 'a,"b\x00'}).status_code < 500
    assert client.post("/console/orders/bulk-ship", data={"csv": "x"}).status_code == 403


def test_product_page_adds_to_cart_for_a_signed_in_customer(client, db, merchant, buyer) -> None:
    # given a product page seen by a visitor and by a signed-in customer
    sku = make_sku(db, merchant=merchant, price_cents=2500, stock=5)
    visitor_page = client.get(f"{shop(merchant)}/p/{sku.product_id}").text
    assert 'data-testid="add-to-cart"' not in visitor_page
    shop_login(db, client, merchant, buyer)
    page = client.get(f"{shop(merchant)}/p/{sku.product_id}").text
    assert 'data-testid="add-to-cart"' in page
    # when the customer adds two to the cart with the page's form token
    r = client.post(f"{shop(merchant)}/cart/add", data={"csrf_token": csrf(page), "sku_id": str(sku.id), "quantity": "2"},
                    follow_redirects=False)
    # then the cart holds them and no stock moved
    assert r.status_code == 303
    line = db.scalars(select(CartLine).where(CartLine.customer_id == buyer.id)).one()
    assert (line.sku_id, line.quantity) == (sku.id, 2)
    assert stock(db, sku) == 5
    # and without the token nothing is added
    r = client.post(f"{shop(merchant)}/cart/add", data={"sku_id": str(sku.id), "quantity": "1"}, follow_redirects=False)
    assert r.status_code == 403
    assert db.scalars(select(CartLine.quantity).where(CartLine.customer_id == buyer.id)).one() == 2
