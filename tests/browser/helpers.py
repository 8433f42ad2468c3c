"""Steps several browser tests share (the fixtures are in conftest.py)."""

from __future__ import annotations

import re

PHONE = {"width": 390, "height": 844}


def fill_new_address(page) -> None:  # type: ignore[no-untyped-def]
    """On the H5 checkout page: type a new delivery address into the checkout form."""
    form = page.locator("form[data-testid=checkout-form]")
    form.locator("input[name=name]").fill("王五")
    form.locator("input[name=phone]").fill("13700001234")
    form.locator("input[name=province]").fill("上海市")
    form.locator("input[name=city]").fill("上海市")
    form.locator("input[name=district]").fill("徐汇区")
    form.locator("input[name=detail]").fill("漕溪北路 88 号")


def place_order_and_pay(page, slug: str, *, amount: str) -> None:  # type: ignore[no-untyped-def]
    """On the H5 checkout page: a new delivery address, place the order, check the amount to pay
    (`amount`, e.g. "¥8.00"), confirm the sandbox payment; ends on the paid order page."""
    fill_new_address(page)
    with page.expect_navigation():
        page.click("[data-testid=place-order]")
    assert re.search(rf"/shop/{slug}/pay/\d+$", page.url), page.url
    assert page.locator("[data-testid=pay-amount]").inner_text() == amount
    with page.expect_navigation():
        page.click("[data-testid=confirm-pay]")
    assert re.search(rf"/shop/{slug}/orders/\d+\?paid=1$", page.url), page.url
