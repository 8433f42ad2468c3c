from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from sqlalchemy import func, select

from siyu.core import clock
from siyu.core.models import AuditLog, OutboxEvent
from siyu.customers import service
from siyu.customers.models import Customer, CustomerTag, Tag, TagGroup
from tests.factories.customers import make_customer, make_tag
from tests.factories.merchants import auth_headers

T0 = dt.datetime(2025, 6, 1, 2, 0, tzinfo=dt.UTC)


def _audits(db, action):
    return list(db.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)))


@pytest.fixture
def people(db, org):
    """One customer per guide, one store-only customer in store B, one with no store at all."""
    m = org.merchant
    return {
        "a1": make_customer(db, merchant=m, owner=org.guide_a, nickname="安安", phone="13811112222"),
        "a2": make_customer(db, merchant=m, owner=org.guide_a2, nickname="贝贝", phone="13833334444"),
        "b": make_customer(db, merchant=m, owner=org.guide_b, nickname="CC", phone="13855556666"),
        "b_store": make_customer(db, merchant=m, store=org.store_b, nickname="丁丁"),
        "none": make_customer(db, merchant=m, nickname="无主"),
    }


def _ids(client, headers, **params):
    r = client.get("/api/v1/admin/customers", headers=headers, params=params)
    assert r.status_code == 200, r.text
    return [i["id"] for i in r.json()["items"]]


def test_list_contract_shape_for_a_guide_masks_phone_without_audit(db, client, org, people):
    # given
    tag = make_tag(db, merchant=org.merchant, name="护肤")
    db.add(CustomerTag(merchant_id=org.merchant.id, customer_id=people["a1"].id, tag_id=tag.id))
    service.record_paid_order(db, merchant_id=org.merchant.id, customer_id=people["a1"].id, order_id=1,
                              amount_cents=12345, paid_at=T0)
    # when
    r = client.get("/api/v1/admin/customers", headers=auth_headers(db, org.guide_a))
    # then
    assert r.status_code == 200
    assert r.json() == {"items": [{
        "id": people["a1"].id, "nickname": "安安", "phone": "138****2222", "owner_id": org.guide_a.id,
        "store_id": org.store_a.id, "tags": [{"id": tag.id, "name": "护肤"}],
        "stats": {"paid_orders": 1, "total_spent_cents": 12345, "last_purchase_at": "2025-06-01T02:00:00Z",
                  "last_order_cents": 12345, "max_order_cents": 12345},
    }], "next_cursor": None}
    assert _audits(db, "customers.phone_view") == []


def test_scoping_by_role(db, client, org, people):
    p = people
    assert _ids(client, auth_headers(db, org.admin)) == sorted([c.id for c in p.values()], reverse=True)
    assert _ids(client, auth_headers(db, org.agent_admin)) == [p["a2"].id, p["a1"].id]
    assert _ids(client, auth_headers(db, org.manager_a)) == [p["a2"].id, p["a1"].id]
    assert _ids(client, auth_headers(db, org.guide_a)) == [p["a1"].id]
    assert _ids(client, auth_headers(db, org.guide_b)) == [p["b"].id]
    assert _ids(client, auth_headers(db, org.other_admin)) == []
    # detail follows the same scope
    guide = auth_headers(db, org.guide_a)
    assert client.get(f"/api/v1/admin/customers/{p['a1'].id}", headers=guide).status_code == 200
    assert client.get(f"/api/v1/admin/customers/{p['a2'].id}", headers=guide).status_code == 404
    manager = auth_headers(db, org.manager_a)
    assert client.get(f"/api/v1/admin/customers/{p['b'].id}", headers=manager).status_code == 404


def test_unmasked_list_is_audited_once_with_ids(db, client, org, people):
    r = client.get("/api/v1/admin/customers", headers=auth_headers(db, org.manager_a))
    assert [i["phone"] for i in r.json()["items"]] == ["13833334444", "13811112222"]
    rows = _audits(db, "customers.phone_view")
    assert len(rows) == 1
    assert rows[0].actor_id == org.manager_a.id
    assert rows[0].details == {"customer_ids": [people["a2"].id, people["a1"].id]}


def test_filters(db, client, org, people):
    # given
    m, p = org.merchant, people
    tag = make_tag(db, merchant=m)
    db.add(CustomerTag(merchant_id=m.id, customer_id=p["b"].id, tag_id=tag.id))
    with clock.frozen(T0):
        service.record_paid_order(db, merchant_id=m.id, customer_id=p["a1"].id, order_id=1, amount_cents=50000,
                                  paid_at=T0 - dt.timedelta(days=100))
        service.record_paid_order(db, merchant_id=m.id, customer_id=p["a2"].id, order_id=2, amount_cents=2000,
                                  paid_at=T0 - dt.timedelta(days=2))
        service.record_paid_order(db, merchant_id=m.id, customer_id=p["a2"].id, order_id=3, amount_cents=3000,
                                  paid_at=T0 - dt.timedelta(days=1))
        h = auth_headers(db, org.admin)
        # then
        assert _ids(client, h, q="安") == [p["a1"].id]
        assert _ids(client, h, q="cc") == [p["b"].id]
        assert _ids(client, h, q="3855") == [p["b"].id]
        assert _ids(client, h, q="%") == []
        assert _ids(client, h, tag_id=tag.id) == [p["b"].id]
        assert _ids(client, h, owner_id=org.guide_a2.id) == [p["a2"].id]
        assert _ids(client, h, store_id=org.store_b.id) == [p["b_store"].id, p["b"].id]
        assert _ids(client, h, last_purchase_before_days=30) == [p["a1"].id]
        assert _ids(client, h, last_purchase_within_days=30) == [p["a2"].id]
        assert _ids(client, h, min_spent_cents=10000) == [p["a1"].id]
        assert _ids(client, h, max_spent_cents=10000, min_orders=1) == [p["a2"].id]
        assert _ids(client, h, min_orders=2) == [p["a2"].id]


def test_cursor_pagination_and_bad_cursor(db, client, org, people):
    h = auth_headers(db, org.admin)
    r = client.get("/api/v1/admin/customers", headers=h, params={"limit": 2})
    body = r.json()
    assert len(body["items"]) == 2 and body["next_cursor"]
    seen = [i["id"] for i in body["items"]]
    cursor = body["next_cursor"]
    while cursor:
        body = client.get("/api/v1/admin/customers", headers=h, params={"limit": 2, "cursor": cursor}).json()
        seen += [i["id"] for i in body["items"]]
        cursor = body["next_cursor"]
    assert seen == sorted([c.id for c in people.values()], reverse=True)
    r = client.get("/api/v1/admin/customers", headers=h, params={"cursor": "!!not-a-cursor"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_cursor"


@pytest.mark.parametrize("params", [
    {"limit": 0}, {"limit": 101}, {"limit": "x"}, {"tag_id": -1}, {"tag_id": 2**60}, {"owner_id": "abc"},
    {"q": "x" * 101}, {"min_spent_cents": -5}, {"last_purchase_before_days": 0}, {"min_orders": 2**40},
    {"cursor": "y" * 300},
])
def test_bad_list_params_are_4xx(db, client, org, params):
    r = client.get("/api/v1/admin/customers", headers=auth_headers(db, org.admin), params=params)
    assert 400 <= r.status_code < 500
    assert "error" in r.json()


def test_list_needs_staff(client, db):
    assert client.get("/api/v1/admin/customers").status_code == 401
    assert client.get("/api/v1/admin/customers", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_detail_shape_and_masking(db, client, org, people):
    c = people["a1"]
    service.add_timeline(db, merchant_id=org.merchant.id, customer_id=c.id, kind="note", text="来过门店")
    r = client.get(f"/api/v1/admin/customers/{c.id}", headers=auth_headers(db, org.guide_a))
    assert r.status_code == 200
    body = r.json()
    assert body["phone"] == "138****2222" and body["profile"]["phone"] == "138****2222"
    assert {i["kind"]: i["value"] for i in body["identities"]}["phone"] == "138****2222"
    assert {i["kind"] for i in body["identities"]} == {"openid", "phone"}
    assert "****" in {i["kind"]: i["value"] for i in body["identities"]}["openid"]
    assert body["timeline"][0]["text"] == "来过门店"
    assert body["stats"]["refunded_cents"] == 0 and body["merged_into_id"] is None
    assert _audits(db, "customers.phone_view") == []
    # an admin sees the phone, and that view is audited
    r = client.get(f"/api/v1/admin/customers/{c.id}", headers=auth_headers(db, org.admin))
    assert r.json()["phone"] == "13811112222"
    assert [(a.target_id, a.details) for a in _audits(db, "customers.phone_view")] == [(c.id, {"customer_ids": [c.id]})]


def test_patch_profile(db, client, org, people):
    c = people["a1"]
    h = auth_headers(db, org.guide_a)
    r = client.patch(f"/api/v1/admin/customers/{c.id}", headers=h,
                     json={"nickname": "安安2", "birthday": "1992-02-03", "notes": "VIP", "gender": "female"})
    assert r.status_code == 200, r.text
    assert r.json()["profile"]["nickname"] == "安安2" and r.json()["profile"]["notes"] == "VIP"
    db.refresh(c)
    assert (c.nickname, c.birthday, c.notes) == ("安安2", dt.date(1992, 2, 3), "VIP")


@pytest.mark.parametrize("body", [
    {"nickname": ""}, {"nickname": "x" * 65}, {"gender": "other"}, {"birthday": "yesterday"}, {"birthday": 5},
    {"notes": "n" * 2001}, {"phone": "abc"}, {"phone": "1" * 31}, {"unknown": 1}, {"nickname": ["x"]},
    {"birthday": "2999-01-01"}, {"avatar_url": "javascript:alert(1)"},
])
def test_patch_bad_input_changes_nothing(db, client, org, people, body):
    c = people["a1"]
    r = client.patch(f"/api/v1/admin/customers/{c.id}", headers=auth_headers(db, org.admin), json=body)
    assert r.status_code == 422, r.text
    db.refresh(c)
    assert (c.nickname, c.gender, c.birthday, c.notes, c.phone) == ("安安", "", None, "", "13811112222")


def test_patch_malformed_json_and_taken_phone(db, client, org, people):
    h = {**auth_headers(db, org.admin), "Content-Type": "application/json"}
    r = client.patch(f"/api/v1/admin/customers/{people['a1'].id}", headers=h, content=b"{nope")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = client.patch(f"/api/v1/admin/customers/{people['a1'].id}", headers=h, json={"phone": "13833334444"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "phone_taken"
    db.refresh(people["a1"])
    assert people["a1"].phone == "13811112222"


def test_other_tenant_gets_404_for_every_customer_and_tag_route(db, client, org, people):
    c = people["a1"]
    tag = make_tag(db, merchant=org.merchant)
    db.add(CustomerTag(merchant_id=org.merchant.id, customer_id=c.id, tag_id=tag.id))
    db.flush()
    h = auth_headers(db, org.other_admin)
    assert client.get(f"/api/v1/admin/customers/{c.id}", headers=h).status_code == 404
    assert client.patch(f"/api/v1/admin/customers/{c.id}", headers=h, json={"nickname": "x"}).status_code == 404
    assert client.post(f"/api/v1/admin/customers/{c.id}/tags", headers=h, json={"tag_ids": [tag.id]}).status_code == 404
    assert client.delete(f"/api/v1/admin/customers/{c.id}/tags/{tag.id}", headers=h).status_code == 404
    assert client.post(f"/api/v1/admin/customers/{c.id}/merge", headers=h,
                       json={"source_id": people["a2"].id}).status_code == 404
    assert client.post("/api/v1/admin/tags", headers=h, json={"group_id": tag.group_id, "name": "x"}).status_code == 422
    r = client.post("/api/v1/admin/customers/bulk-tag", headers=h, json={"customer_ids": [c.id], "tag_ids": [tag.id]})
    assert r.status_code == 404
    assert client.get("/api/v1/admin/tag-groups", headers=h).json() == {"items": []}
    # their own tag on our customer: the customer is not found
    their_tag = make_tag(db, merchant=db.get(type(org.merchant), org.other_admin.merchant_id))
    assert client.post(f"/api/v1/admin/customers/{c.id}/tags", headers=h, json={"tag_ids": [their_tag.id]}).status_code == 404
    db.refresh(c)
    assert c.nickname == "安安" and c.merged_into_id is None
    assert db.scalar(select(func.count()).select_from(CustomerTag).where(CustomerTag.customer_id == c.id)) == 1


def test_tag_groups_and_tags_routes(db, client, org):
    admin = auth_headers(db, org.admin)
    r = client.post("/api/v1/admin/tag-groups", headers=admin, json={"name": "兴趣偏好"})
    assert r.status_code == 201
    group_id = r.json()["id"]
    r = client.post("/api/v1/admin/tags", headers=admin, json={"group_id": group_id, "name": "香氛"})
    assert r.status_code == 201
    tag_id = r.json()["id"]
    assert client.get("/api/v1/admin/tag-groups", headers=auth_headers(db, org.guide_a)).json() == {
        "items": [{"id": group_id, "name": "兴趣偏好", "tags": [{"id": tag_id, "group_id": group_id, "name": "香氛"}]}]}
    # duplicates, bad input, permissions
    assert client.post("/api/v1/admin/tag-groups", headers=admin, json={"name": "兴趣偏好"}).status_code == 422
    assert client.post("/api/v1/admin/tag-groups", headers=admin, json={"name": "x" * 41}).status_code == 422
    assert client.post("/api/v1/admin/tag-groups", headers=admin, json={"name": 5}).status_code == 422
    assert client.post("/api/v1/admin/tags", headers=admin, json={"group_id": 999999, "name": "x"}).status_code == 422
    assert client.post("/api/v1/admin/tags", headers=admin, json={"group_id": "a", "name": "x"}).status_code == 422
    guide = auth_headers(db, org.guide_a)
    assert client.post("/api/v1/admin/tag-groups", headers=guide, json={"name": "导购的"}).status_code == 403
    assert client.post("/api/v1/admin/tags", headers=guide, json={"group_id": group_id, "name": "y"}).status_code == 403
    assert db.scalar(select(func.count()).select_from(TagGroup).where(TagGroup.merchant_id == org.merchant.id)) == 1
    assert db.scalar(select(func.count()).select_from(Tag).where(Tag.merchant_id == org.merchant.id)) == 1


def test_tag_and_untag_a_customer(db, client, org, people):
    c = people["a1"]
    t1, t2 = make_tag(db, merchant=org.merchant), make_tag(db, merchant=org.merchant)
    h = auth_headers(db, org.guide_a)
    r = client.post(f"/api/v1/admin/customers/{c.id}/tags", headers=h, json={"tag_ids": [t1.id, t2.id]})
    assert r.status_code == 200
    assert [t["id"] for t in r.json()["tags"]] == [t1.id, t2.id]
    assert r.json()["timeline"][0]["kind"] == "tagged"
    assert client.delete(f"/api/v1/admin/customers/{c.id}/tags/{t1.id}", headers=h).status_code == 204
    assert client.delete(f"/api/v1/admin/customers/{c.id}/tags/{t1.id}", headers=h).status_code == 404
    assert client.post(f"/api/v1/admin/customers/{c.id}/tags", headers=h, json={"tag_ids": [987654]}).status_code == 404
    assert client.post(f"/api/v1/admin/customers/{c.id}/tags", headers=h, json={"tag_ids": []}).status_code == 422
    assert client.post(f"/api/v1/admin/customers/{c.id}/tags", headers=h, json={"tag_ids": "1"}).status_code == 422
    # a guide cannot tag another guide's customer
    assert client.post(f"/api/v1/admin/customers/{people['a2'].id}/tags", headers=h,
                       json={"tag_ids": [t1.id]}).status_code == 404
    assert list(db.scalars(select(CustomerTag.tag_id).where(CustomerTag.customer_id == c.id))) == [t2.id]


def test_bulk_tag_counts_customers_outside_scope_as_not_found(db, client, org, people):
    tag = make_tag(db, merchant=org.merchant)
    p = people
    r = client.post("/api/v1/admin/customers/bulk-tag", headers=auth_headers(db, org.manager_a),
                    json={"customer_ids": [p["a1"].id, p["a2"].id, p["b"].id, 99999999], "tag_ids": [tag.id]})
    assert r.status_code == 200
    assert r.json() == {"customers": 2, "not_found": 2, "added": 2}
    tagged = set(db.scalars(select(CustomerTag.customer_id).where(CustomerTag.tag_id == tag.id)))
    assert tagged == {p["a1"].id, p["a2"].id}
    bad = client.post("/api/v1/admin/customers/bulk-tag", headers=auth_headers(db, org.admin),
                      json={"customer_ids": list(range(1, 1002)), "tag_ids": [tag.id]})
    assert bad.status_code == 422


def test_merge_route(db, client, org, people):
    p = people
    r = client.post(f"/api/v1/admin/customers/{p['a1'].id}/merge", headers=auth_headers(db, org.manager_a),
                    json={"source_id": p["a2"].id})
    assert r.status_code == 403
    h = auth_headers(db, org.admin)
    r = client.post(f"/api/v1/admin/customers/{p['a1'].id}/merge", headers=h, json={"source_id": p["a2"].id})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == p["a1"].id
    assert p["a2"].id not in _ids(client, h)
    event = db.scalars(select(OutboxEvent).where(OutboxEvent.name == "customer.merged")).one()
    assert event.payload == {"source_id": p["a2"].id, "target_id": p["a1"].id}
    assert client.post(f"/api/v1/admin/customers/{p['a1'].id}/merge", headers=h,
                       json={"source_id": p["a2"].id}).status_code == 409
    assert client.post(f"/api/v1/admin/customers/{p['a1'].id}/merge", headers=h,
                       json={"source_id": p["a1"].id}).status_code == 409
    assert client.post(f"/api/v1/admin/customers/{p['a1'].id}/merge", headers=h,
                       json={"source_id": "x"}).status_code == 422


def test_export_csv_masks_and_audits(db, client, org, people):
    # store manager: may export, phones masked
    r = client.get("/api/v1/admin/customers/export.csv", headers=auth_headers(db, org.manager_a),
                   params={"q": "安"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][:4] == ["id", "nickname", "name", "phone"]
    assert rows[1:] == [[str(people["a1"].id), "安安", "", "138****2222", "", "", org.guide_a.name, org.store_a.name,
                         "", "0", "0.00", "", clock.format_local(people["a1"].created_at)]]
    audit = _audits(db, "customers.export")
    assert [(a.actor_id, a.details) for a in audit] == [
        (org.manager_a.id, {"filters": {"q": "安"}, "rows": 1, "phones_unmasked": False})]
    # brand admin: phones in full
    r = client.get("/api/v1/admin/customers/export.csv", headers=auth_headers(db, org.admin))
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert len(rows) == 6 and "13811112222" in [row[3] for row in rows]
    assert _audits(db, "customers.export")[-1].details["rows"] == 5
    # guides may not export
    r = client.get("/api/v1/admin/customers/export.csv", headers=auth_headers(db, org.guide_a))
    assert r.status_code == 403
    assert len(_audits(db, "customers.export")) == 2


def test_export_neutralises_formulas(db, client, org):
    make_customer(db, merchant=org.merchant, nickname="=HYPERLINK(1)")
    r = client.get("/api/v1/admin/customers/export.csv", headers=auth_headers(db, org.admin))
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[1][1] == "'=HYPERLINK(1)"


@pytest.mark.parametrize("path", ["/api/v1/admin/customers/0", "/api/v1/admin/customers/abc",
                                  "/api/v1/admin/customers/99999999999999999999", "/api/v1/admin/customers/-1"])
def test_bad_ids_are_4xx(db, client, org, path):
    r = client.get(path, headers=auth_headers(db, org.admin))
    assert 400 <= r.status_code < 500


def test_unknown_customer_is_404(db, client, org):
    assert client.get("/api/v1/admin/customers/123456789", headers=auth_headers(db, org.admin)).status_code == 404
    assert db.scalar(select(func.count()).select_from(Customer).where(Customer.merchant_id == org.merchant.id)) == 0
