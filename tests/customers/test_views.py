from __future__ import annotations

import re

from sqlalchemy import func, select

from siyu.core.models import AuditLog
from siyu.customers.models import Customer, CustomerTag, Tag, TagGroup
from tests.factories.customers import make_customer, make_tag
from tests.factories.merchants import PASSWORD, make_merchant


def login(client, staff) -> None:
    r = client.post("/console/login", data={"username": staff.username, "password": PASSWORD, "next": "/console/"},
                    follow_redirects=False)
    assert r.status_code == 303


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_list_page_for_a_guide_shows_only_their_customers_masked(db, client, org):
    make_customer(db, merchant=org.merchant, owner=org.guide_a, nickname="我的顾客", phone="13811112222")
    make_customer(db, merchant=org.merchant, owner=org.guide_a2, nickname="别人的顾客")
    login(client, org.guide_a)
    r = client.get("/console/customers")
    assert r.status_code == 200
    assert "我的顾客" in r.text and "别人的顾客" not in r.text
    assert "138****2222" in r.text and "13811112222" not in r.text
    assert "export.csv" not in r.text  # guides cannot export


def test_list_page_filters_are_kept_in_the_url_and_bad_values_reported(db, client, org):
    make_customer(db, merchant=org.merchant, owner=org.guide_a, nickname="安安")
    make_customer(db, merchant=org.merchant, owner=org.guide_b, nickname="贝贝")
    login(client, org.admin)
    r = client.get("/console/customers", params={"q": "安", "min_spent": "abc", "idle_days": "-3"})
    assert r.status_code == 200
    assert "安安" in r.text and "贝贝" not in r.text
    assert 'name="q" value="安"' in r.text
    assert 'name="min_spent" value="abc"' in r.text and 'class="flash error"' in r.text
    assert "export.csv?q=%E5%AE%89" in r.text
    r = client.get("/console/customers", params={"cursor": "garbage"})
    assert r.status_code == 200 and "贝贝" in r.text


def test_empty_list_says_what_to_do(db, client, org):
    login(client, org.admin)
    r = client.get("/console/customers")
    assert 'data-testid="empty"' in r.text and "/console/customers/tags" in r.text


def test_list_pagination_links(db, client, org):
    for i in range(25):
        make_customer(db, merchant=org.merchant, nickname=f"顾客{i:02d}")
    login(client, org.admin)
    r = client.get("/console/customers")
    assert r.text.count('data-testid="customer-row"') == 20
    next_url = re.search(r'href="(/console/customers\?cursor=[^"]+)" data-testid="next-page"', r.text).group(1)
    r = client.get(next_url.replace("&amp;", "&"))
    assert r.text.count('data-testid="customer-row"') == 5 and "顾客00" in r.text


def test_bulk_tag_form(db, client, org):
    a = make_customer(db, merchant=org.merchant, owner=org.guide_a)
    b = make_customer(db, merchant=org.merchant, owner=org.guide_a)
    outside = make_customer(db, merchant=org.merchant, owner=org.guide_b)
    tag = make_tag(db, merchant=org.merchant, name="高消费")
    login(client, org.manager_a)
    page = client.get("/console/customers")
    r = client.post("/console/customers/bulk-tag", data={
        "csrf_token": csrf(page.text), "customer_ids": [str(a.id), str(b.id), str(outside.id)], "tag_id": str(tag.id),
        "back": "q="}, follow_redirects=False)
    assert r.status_code == 303 and "ok=bulk" in r.headers["location"] and "n=2" in r.headers["location"]
    assert set(db.scalars(select(CustomerTag.customer_id).where(CustomerTag.tag_id == tag.id))) == {a.id, b.id}
    # no CSRF: refused, nothing changes
    r = client.post("/console/customers/bulk-tag", data={"customer_ids": [str(outside.id)], "tag_id": str(tag.id)})
    assert r.status_code == 403
    # nothing chosen: back to the list with an error
    r = client.post("/console/customers/bulk-tag", data={"csrf_token": csrf(page.text), "tag_id": str(tag.id)},
                    follow_redirects=False)
    assert "err=bulk" in r.headers["location"]
    assert db.scalar(select(func.count()).select_from(CustomerTag).where(CustomerTag.tag_id == tag.id)) == 2


def test_detail_page_edit_tags_and_show_phone(db, client, org):
    c = make_customer(db, merchant=org.merchant, owner=org.guide_a, nickname="安安", phone="13811112222")
    tag = make_tag(db, merchant=org.merchant, name="香氛")
    login(client, org.manager_a)
    page = client.get(f"/console/customers/{c.id}")
    assert page.status_code == 200
    assert "安安" in page.text and "138****2222" in page.text and 'data-testid="show-phone"' in page.text
    token = csrf(page.text)
    # edit with an error: what was typed is shown again with the error beside the field
    r = client.post(f"/console/customers/{c.id}", data={"csrf_token": token, "nickname": "新名字", "birthday": "1990-13-40",
                                                        "gender": "", "name": "", "region": "上海", "notes": "备注"})
    assert r.status_code == 422
    assert 'value="新名字"' in r.text and 'data-testid="error-birthday"' in r.text
    db.refresh(c)
    assert c.nickname == "安安"
    # a good edit
    r = client.post(f"/console/customers/{c.id}", data={"csrf_token": token, "nickname": "新名字", "birthday": "1990-12-01",
                                                        "gender": "female", "name": "", "region": "上海", "notes": "备注"},
                    follow_redirects=False)
    assert r.status_code == 303
    db.refresh(c)
    assert (c.nickname, c.region, c.notes, c.gender) == ("新名字", "上海", "备注", "female")
    # tag and untag
    r = client.post(f"/console/customers/{c.id}/tags", data={"csrf_token": token, "tag_id": str(tag.id)},
                    follow_redirects=False)
    assert r.status_code == 303
    assert client.get(f"/console/customers/{c.id}").text.count("香氛") >= 1
    r = client.post(f"/console/customers/{c.id}/tags/{tag.id}/remove", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    assert db.scalar(select(func.count()).select_from(CustomerTag).where(CustomerTag.customer_id == c.id)) == 0
    # show phone: audited
    r = client.post(f"/console/customers/{c.id}/show-phone", data={"csrf_token": token})
    assert r.status_code == 200 and "13811112222" in r.text
    audit = db.scalars(select(AuditLog).where(AuditLog.action == "customers.phone_view")).all()
    assert [(a.actor_id, a.target_id) for a in audit] == [(org.manager_a.id, c.id)]
    page = client.get(f"/console/customers/{c.id}", headers={"Accept-Language": "en"})
    assert "资料已修改" in page.text  # the timeline, written in the locale of the edit (zh-CN by default)


def test_guide_cannot_show_phone_or_open_other_customers(db, client, org):
    mine = make_customer(db, merchant=org.merchant, owner=org.guide_a, phone="13811112222")
    other = make_customer(db, merchant=org.merchant, owner=org.guide_a2)
    login(client, org.guide_a)
    page = client.get(f"/console/customers/{mine.id}")
    assert 'data-testid="show-phone"' not in page.text
    r = client.post(f"/console/customers/{mine.id}/show-phone", data={"csrf_token": csrf(page.text)})
    assert r.status_code == 403
    assert client.get(f"/console/customers/{other.id}").status_code == 404
    assert client.get("/console/customers/abc").status_code in (404, 422)
    assert db.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "customers.phone_view")) == 0


def test_other_merchant_staff_get_404_on_console_pages(db, client, org):
    c = make_customer(db, merchant=org.merchant)
    login(client, org.other_admin)
    assert client.get(f"/console/customers/{c.id}").status_code == 404


def test_merge_form(db, client, org):
    target = make_customer(db, merchant=org.merchant, nickname="目标")
    source = make_customer(db, merchant=org.merchant, nickname="重复")
    login(client, org.admin)
    token = csrf(client.get(f"/console/customers/{target.id}").text)
    r = client.post(f"/console/customers/{target.id}/merge", data={"csrf_token": token, "source_id": "abc"})
    assert r.status_code == 422 and 'value="abc"' in r.text
    r = client.post(f"/console/customers/{target.id}/merge", data={"csrf_token": token, "source_id": "99999999"})
    assert r.status_code == 422
    r = client.post(f"/console/customers/{target.id}/merge", data={"csrf_token": token, "source_id": str(source.id)},
                    follow_redirects=False)
    assert r.status_code == 303
    db.refresh(source)
    assert source.merged_into_id == target.id
    page = client.get(f"/console/customers/{source.id}")
    assert f"/console/customers/{target.id}" in page.text


def test_tags_page(db, client, org):
    login(client, org.admin)
    page = client.get("/console/customers/tags")
    assert page.status_code == 200 and 'data-testid="empty"' in page.text
    token = csrf(page.text)
    r = client.post("/console/customers/tag-groups", data={"csrf_token": token, "name": "兴趣偏好"}, follow_redirects=False)
    assert r.status_code == 303
    group = db.scalars(select(TagGroup).where(TagGroup.merchant_id == org.merchant.id)).one()
    r = client.post("/console/customers/tag-groups", data={"csrf_token": token, "name": "兴趣偏好"})
    assert r.status_code == 422 and 'data-testid="error-group-name"' in r.text and 'value="兴趣偏好"' in r.text
    r = client.post("/console/customers/tags", data={"csrf_token": token, "group_id": str(group.id), "name": "x" * 41})
    assert r.status_code == 422 and 'data-testid="error-tag-name"' in r.text
    r = client.post("/console/customers/tags", data={"csrf_token": token, "group_id": str(group.id), "name": "香氛"},
                    follow_redirects=False)
    assert r.status_code == 303
    assert db.scalars(select(Tag.name).where(Tag.group_id == group.id)).all() == ["香氛"]
    assert "香氛" in client.get("/console/customers/tags").text


def test_console_pages_redirect_to_login(client, db):
    r = client.get("/console/customers", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login")


# ---------------------------------------------------------------- H5 shop


def test_shop_demo_login_then_edit_profile(db, client):
    merchant = make_merchant(db)
    # not signed in: the me page sends to login
    r = client.get(f"/shop/{merchant.slug}/me", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith(f"/shop/{merchant.slug}/login")
    page = client.get(f"/shop/{merchant.slug}/login?next=/shop/{merchant.slug}/me")
    assert 'data-testid="demo-login"' in page.text
    # a bad nickname is re-shown with an error
    r = client.post(f"/shop/{merchant.slug}/login", data={"nickname": "n" * 70, "openid": "", "next": "/shop/x"})
    assert r.status_code == 422
    # demo login
    r = client.post(f"/shop/{merchant.slug}/login", data={"nickname": "小明", "openid": "",
                                                          "next": f"/shop/{merchant.slug}/me"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/shop/{merchant.slug}/me"
    cookie = r.headers["set-cookie"]
    assert f"siyu_c_{merchant.slug}=" in cookie and "HttpOnly" in cookie
    me = client.get(f"/shop/{merchant.slug}/me")
    assert me.status_code == 200 and 'data-testid="me-nickname">小明<' in me.text
    token = csrf(me.text)
    # edit with an error, then properly
    r = client.post(f"/shop/{merchant.slug}/me", data={"csrf_token": token, "nickname": "", "region": "杭州"})
    assert r.status_code == 422 and 'value="杭州"' in r.text
    r = client.post(f"/shop/{merchant.slug}/me", data={"csrf_token": token, "nickname": "明明", "region": "杭州",
                                                       "gender": "male", "birthday": "2000-01-01", "name": ""},
                    follow_redirects=False)
    assert r.status_code == 303
    customer = db.scalars(select(Customer).where(Customer.merchant_id == merchant.id)).one()
    assert (customer.nickname, customer.region, customer.gender) == ("明明", "杭州", "male")
    # without the form token nothing changes
    r = client.post(f"/shop/{merchant.slug}/me", data={"nickname": "黑客"})
    assert r.status_code == 403
    db.refresh(customer)
    assert customer.nickname == "明明"
    # sign out
    r = client.post(f"/shop/{merchant.slug}/logout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get(f"/shop/{merchant.slug}/me", follow_redirects=False).status_code == 303


def test_shop_login_never_redirects_off_site(db, client):
    merchant = make_merchant(db)
    r = client.post(f"/shop/{merchant.slug}/login", data={"nickname": "x", "next": "https://evil.example/"},
                    follow_redirects=False)
    assert r.headers["location"] == f"/shop/{merchant.slug}/"
    r = client.post(f"/shop/{merchant.slug}/login", data={"nickname": "x", "next": f"/shop/{merchant.slug}//evil"},
                    follow_redirects=False)
    assert r.headers["location"] == f"/shop/{merchant.slug}/"


def test_shop_login_page_without_dev_login(db, client, dev_login_off):
    merchant = make_merchant(db)
    page = client.get(f"/shop/{merchant.slug}/login")
    assert page.status_code == 200 and 'data-testid="demo-login"' not in page.text
    r = client.post(f"/shop/{merchant.slug}/login", data={"nickname": "x"})
    assert r.status_code == 404
    assert db.scalar(select(func.count()).select_from(Customer).where(Customer.merchant_id == merchant.id)) == 0
