"""The analytics API (JSON) and console pages over HTTP, on the data set of conftest.`sales`."""

from __future__ import annotations

import re

from siyu.core import audit
from tests.factories.merchants import PASSWORD, auth_headers

Q = "start=2026-06-01&end=2026-06-07"


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def console_login(client, staff) -> str:
    r = client.post("/console/login", data={"username": staff.username, "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303
    return csrf(client.get("/console/analytics/rfm?" + Q).text)


def test_every_view_answers_json(db, client, sales):
    h = auth_headers(db, sales["admin"])
    gmv = client.get(f"/api/v1/admin/analytics/gmv?{Q}", headers=h).json()
    assert gmv["current"]["gmv_cents"] == 43000 and gmv["previous"]["gmv_cents"] == 16000
    assert gmv["contributions_cents"] == {"visitors": 23127, "conversion": -4552, "aov": 8425}
    assert gmv["days"][3] == {"day": "2026-06-04", "visitors": 0, "buyers": 0, "orders": 0, "gmv_cents": 0,
                              "refunded_cents": 0, "net_cents": 0, "conversion_bps": None, "aov_cents": None}
    mix = client.get(f"/api/v1/admin/analytics/channel-mix?{Q}", headers=h).json()
    assert [(g["group"], g["share_bps"], g["gap_bps"]) for g in mix["groups"]] == [
        ("store", 0, -4000), ("platform", 1389, -611), ("content", 1111, -889), ("social", 7500, 5500)]
    rfm = client.get(f"/api/v1/admin/analytics/rfm?{Q}&customers=true", headers=h).json()
    assert rfm["scored_customers"] == 4 and len(rfm["customers"]) == 4
    funnel = client.get(f"/api/v1/admin/analytics/funnel?{Q}", headers=h).json()
    assert funnel["overall"]["counts"]["pay"] == 4
    cohorts = client.get("/api/v1/admin/analytics/cohorts?start=2026-04-01&end=2026-06-07", headers=h).json()
    assert [c["customers"] for c in cohorts["cohorts"]] == [1, 1, 2]
    board = client.get(f"/api/v1/admin/analytics/leaderboard?{Q}", headers=h).json()
    assert [(g["name"], g["attributed_net_cents"], g["tasks_done"]) for g in board["guides"]] == [
        ("导购A", 32000, None), ("导购B", 4000, None)]
    fission = client.get(f"/api/v1/admin/analytics/fission?{Q}", headers=h).json()
    assert (fission["shares"], fission["k_factor_bps"]) == (0, None)


def test_bad_filters_are_422_not_500(db, client, sales):
    h = auth_headers(db, sales["admin"])
    r = client.get("/api/v1/admin/analytics/gmv?start=2026-06-08&end=2026-06-01", headers=h)
    assert r.status_code == 422 and r.json()["error"]["details"]["fields"]["start"]
    assert client.get("/api/v1/admin/analytics/rfm?start=yesterday", headers=h).status_code == 422
    assert client.get("/api/v1/admin/analytics/funnel?store_id=-3", headers=h).status_code == 422
    bogus = client.get(f"/api/v1/admin/analytics/funnel?{Q}&channel=telepathy", headers=h)
    assert bogus.status_code == 422 and bogus.json()["error"]["details"]["fields"]["channel"]
    assert client.get("/api/v1/admin/analytics/gmv").status_code == 401


def test_settings_target_mix_must_add_up(db, client, sales):
    h = auth_headers(db, sales["admin"])
    bad = client.put("/api/v1/admin/analytics/settings", headers=h,
                     json={"target_mix_bps": {"store": 5000, "platform": 2000, "content": 2000, "social": 2000}})
    assert bad.status_code == 422
    assert client.get("/api/v1/admin/analytics/settings", headers=h).json()["target_mix_bps"]["store"] == 4000
    ok = client.put("/api/v1/admin/analytics/settings", headers=h,
                    json={"target_mix_bps": {"store": 5000, "platform": 1000, "content": 2000, "social": 2000}})
    assert ok.status_code == 200 and ok.json()["target_mix_bps"]["store"] == 5000
    guide = auth_headers(db, sales["guide_a"])
    assert client.put("/api/v1/admin/analytics/settings", headers=guide, json={"rfm_method": "thresholds"}).status_code == 403


def test_saved_segment_members_and_csv_export(db, client, sales):
    h = auth_headers(db, sales["admin"])
    r = client.post("/api/v1/admin/analytics/segments", headers=h, json={"name": "流失客户", "segment": "lost"})
    assert r.status_code == 201
    seg = r.json()["id"]
    # as of today (06-10): c1 last bought 06-02 (8 days), c2 06-07 (3), c3 06-03 (7), c5 05-31 (10)
    # R cuts (-10, -8, -7, -3): c5 1, c1 2, c3 3, c2 4; c5 (F1, M2) is lost
    members = client.get(f"/api/v1/admin/analytics/segments/{seg}/members", headers=h).json()
    assert [m["customer_id"] for m in members["items"]] == [sales["c5"].id]
    assert client.post("/api/v1/admin/analytics/segments", headers=h,
                       json={"name": "流失客户", "segment": "lost"}).status_code == 409
    csv = client.get(f"/api/v1/admin/analytics/segments/{seg}/members.csv", headers=h)
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("customer_id,nickname,phone") and lines[1].startswith(f"{sales['c5'].id},c5,")
    assert [e.action for e in audit.entries(db, merchant_id=sales["merchant"].id, action="analytics.segment_export")]
    # a guide sees only segments narrowed to themselves, and never another guide's customers
    g = auth_headers(db, sales["guide_a"])
    assert client.get(f"/api/v1/admin/analytics/segments/{seg}/members", headers=g).status_code == 404


def test_console_pages_render_with_charts_and_csv(db, client, sales):
    token = console_login(client, sales["admin"])
    for path in ("/console/analytics", "/console/analytics/rfm", "/console/analytics/funnel",
                 "/console/analytics/fission", "/console/analytics/gmv", "/console/analytics/channel-mix",
                 "/console/analytics/cohorts", "/console/analytics/leaderboard"):
        page = client.get(f"{path}?{Q}")
        assert page.status_code == 200, path
        assert "/static/vendor/plotly.min.js" in page.text and "Plotly.newPlot" in page.text, path
    assert "¥430.00" in client.get(f"/console/analytics?{Q}").text
    # a period ending inside its month says that the month's column is the month so far; a whole month does not
    so_far = re.search(r'data-testid="cohorts-so-far">([^<]*)<', client.get(f"/console/analytics/cohorts?{Q}").text)
    assert so_far is not None and "2026-06-07" in so_far.group(1) and "2026-06）" in so_far.group(1)
    assert 'cohorts-so-far' not in client.get("/console/analytics/cohorts?start=2026-04-01&end=2026-05-31").text
    csv = client.get(f"/console/analytics/channel-mix.csv?{Q}")
    assert csv.text.lstrip("\ufeff").splitlines()[4] == "social,2,27000,27000,7500,2000,5500"
    gmv_csv = client.get(f"/console/analytics/gmv.csv?{Q}").text.lstrip("\ufeff").splitlines()
    assert gmv_csv[4] == "2026-06-04,0,0,0,0,0,0,,"
    # a bad date is shown beside the field, the page still answers
    bad = client.get("/console/analytics/gmv?start=nope")
    assert bad.status_code == 200 and 'data-testid="error-start"' in bad.text
    # target mix from the form, in percent
    r = client.post("/console/analytics/settings", data={"csrf_token": token, "target_store": "25", "target_platform": "25",
                                                         "target_content": "25", "target_social": "25.5"})
    assert r.status_code == 200 and 'data-testid="error-target_mix_bps"' in r.text and 'value="25.5"' in r.text
    r = client.post("/console/analytics/settings", data={"csrf_token": token, "target_store": "25", "target_platform": "25",
                                                         "target_content": "25", "target_social": "25"},
                    follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/api/v1/admin/analytics/settings", headers=auth_headers(db, sales["admin"])).json()[
        "target_mix_bps"] == {"store": 2500, "platform": 2500, "content": 2500, "social": 2500}
    r = client.post("/console/analytics/segments", data={"csrf_token": token, "name": "冠军", "segment": "champions"},
                    follow_redirects=False)
    assert r.status_code == 303
    assert client.get(r.headers["location"]).status_code == 200


def test_a_guide_sees_figures_of_their_own_customers_in_chinese(db, client, sales):
    # given guide A (customers c1, c2) signed in to the console, in Chinese (the default)
    console_login(client, sales["guide_a"])
    page = client.get(f"/console/analytics/gmv?{Q}")
    assert page.status_code == 200
    assert "GMV 拆解" in page.text and "以下为你自己客户的数据。" in page.text
    # o3 + o2 + o7 = ¥320.00, not the merchant's ¥430.00; no store or guide filter for a guide
    assert "¥320.00" in page.text and "¥430.00" not in page.text
    assert 'name="guide_id"' not in page.text
    board = client.get(f"/console/analytics/leaderboard?{Q}").text
    assert "导购A" in board and "导购B" not in board
    h = auth_headers(db, sales["guide_a"])
    rfm = client.get(f"/api/v1/admin/analytics/rfm?{Q}&customers=true", headers=h).json()
    assert sorted(c["customer_id"] for c in rfm["customers"]) == sorted([sales["c1"].id, sales["c2"].id])


def test_the_channel_filter_offers_touch_channels_and_says_how_people_are_placed(db, client, sales):
    console_login(client, sales["admin"])
    page = client.get(f"/console/analytics/funnel?{Q}&channel=guide_qr").text
    assert '<option value="guide_qr" selected>' in page and 'value="social"' in page
    assert 'data-testid="touch-note"' in page
    assert 'data-testid="touch-note"' not in client.get(f"/console/analytics/funnel?{Q}").text
    h = auth_headers(db, sales["admin"])
    funnel = client.get(f"/api/v1/admin/analytics/funnel?{Q}&channel=guide_qr", headers=h).json()
    assert funnel["filters"]["channel"] == "guide_qr" and funnel["overall"]["counts"]["pay"] >= 1
