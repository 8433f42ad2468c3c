"""Sending a coupon to a saved RFM segment (the analytics route calling the coupon service), on the data set
of the analytics tests (`sales`: as of 06-10, the "lost" segment is customer c5 alone)."""

from __future__ import annotations

import re

from sqlalchemy import select

from siyu.promotions.models.coupons import Coupon
from tests.analytics.conftest import sales  # noqa: F401 (the fixture)
from tests.factories.merchants import PASSWORD, auth_headers
from tests.factories.promotions import make_coupon_template


def test_send_a_coupon_to_a_saved_segment(db, client, sales) -> None:  # noqa: F811
    h = auth_headers(db, sales["admin"])
    seg = client.post("/api/v1/admin/analytics/segments", headers=h, json={"name": "流失客户", "segment": "lost"}).json()
    template = make_coupon_template(db, merchant=sales["merchant"], channels=["segment"], name="回归券")
    # when
    r = client.post(f"/api/v1/admin/analytics/segments/{seg['id']}/send-coupon", headers=h,
                    json={"template_id": template.id})
    # then: the one member has the coupon, through the segment channel
    assert r.status_code == 200, r.text
    assert (r.json()["issued"], r.json()["refused"]) == (1, {})
    coupon = db.scalars(select(Coupon)).one()
    assert (coupon.customer_id, coupon.channel, coupon.source_ref) == (sales["c5"].id, "segment", f"segment:{seg['id']}")
    # again: the per-customer limit holds
    r = client.post(f"/api/v1/admin/analytics/segments/{seg['id']}/send-coupon", headers=h,
                    json={"template_id": template.id})
    assert (r.json()["issued"], r.json()["refused"]) == (0, {"coupon_limit_reached": 1})
    # a template not offered to segments: refused, nothing sent
    other = make_coupon_template(db, merchant=sales["merchant"], channels=["centre"])
    r = client.post(f"/api/v1/admin/analytics/segments/{seg['id']}/send-coupon", headers=h,
                    json={"template_id": other.id})
    assert (r.json()["issued"], r.json()["refused"]) == (0, {"coupon_not_claimable": 1})
    # the console page lists the segment-channel templates and sends
    client.post("/console/login", data={"username": sales["admin"].username, "password": PASSWORD})
    page = client.get(f"/console/analytics/segments/{seg['id']}/send-coupon").text
    assert f'<option value="{template.id}">' in page and f'<option value="{other.id}">' not in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = client.post(f"/console/analytics/segments/{seg['id']}/send-coupon",
                    data={"csrf_token": token, "template_id": str(template.id)})
    assert r.status_code == 200 and 'data-testid="send-result"' in r.text
