"""The console's sign-in and settings pages, through HTTP as a browser without JavaScript uses them."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import func, select

from siyu.core.auth import Role
from siyu.core.models import OutboxEvent
from siyu.merchants import service
from siyu.merchants.models import Agent, Merchant, Staff, StaffToken, Store
from tests.factories.merchants import (
    PASSWORD,
    auth_headers,
    make_agent,
    make_merchant,
    make_staff,
    make_store,
)

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def login(client, username: str, password: str = PASSWORD) -> None:
    client.cookies.clear()
    r = client.post("/console/login", data={"username": username, "password": password}, follow_redirects=False)
    assert r.status_code == 303, r.text


def csrf(client, path: str = "/console/settings") -> str:
    r = client.get(path)
    assert r.status_code == 200, r.text
    return CSRF_RE.search(r.text).group(1)


def post(client, path: str, data: dict, *, token: str | None = None, follow: bool = False):
    return client.post(path, data={"csrf_token": token or csrf(client), **data}, follow_redirects=follow)


def table(page: str, testid: str) -> str:
    m = re.search(rf'<table data-testid="{testid}">.*?</table>', page, re.S)
    return m.group(0) if m else ""


def count(db, model, *where) -> int:
    return db.scalar(select(func.count()).select_from(model).where(*where))


def field_error(page: str, name: str) -> str | None:
    m = re.search(rf'data-testid="error-{name}">([^<]*)<', page)
    return html.unescape(m.group(1)) if m else None


def input_value(page: str, name: str) -> str | None:
    m = re.search(rf'<input name="{name}"[^>]*value="([^"]*)"', page)
    return html.unescape(m.group(1)) if m else None


@pytest.fixture
def org(db):
    """A merchant with an agent, two stores, a brand admin, a manager and two guides."""
    merchant = make_merchant(db, name="一号品牌")
    agent = make_agent(db, merchant=merchant, name="华南代理")
    store = make_store(db, merchant=merchant, name="广州天河店", agent=agent)
    other_store = make_store(db, merchant=merchant, name="深圳南山店")
    admin = make_staff(db, merchant=merchant, username="boss", name="老板")
    manager = make_staff(db, merchant=merchant, role=Role.STORE_MANAGER, store=store, username="mgr", name="店长甲")
    guide = make_staff(db, merchant=merchant, role=Role.GUIDE, store=store, username="g1", name="导购甲")
    other_guide = make_staff(db, merchant=merchant, role=Role.GUIDE, store=other_store, username="g2", name="导购乙")
    return {"merchant": merchant, "agent": agent, "store": store, "other_store": other_store, "admin": admin,
            "manager": manager, "guide": guide, "other_guide": other_guide}


# ---------------------------------------------------------------- sign in and out


def test_wrong_password_reshows_the_username_and_the_error(db, client, org):
    r = client.post("/console/login", data={"username": "boss", "password": "wrong-password"}, follow_redirects=False)
    assert r.status_code == 401
    assert input_value(r.text, "username") == "boss"
    assert "用户名或密码错误。" in r.text
    assert count(db, StaffToken) == 0
    assert "siyu_session" not in r.headers.get("set-cookie", "")


def test_login_lands_on_the_dashboard(db, client, org):
    r = client.post("/console/login", data={"username": "boss", "password": PASSWORD})
    assert r.status_code == 200
    assert str(r.url).endswith("/console/")
    assert 'data-testid="overview-stats"' in r.text
    assert "一号品牌" in r.text and "老板" in r.text


def test_login_follows_next_but_never_off_the_console(db, client, org):
    r = client.post("/console/login", data={"username": "boss", "password": PASSWORD, "next": "/console/settings/stores"},
                    follow_redirects=False)
    assert r.headers["location"] == "/console/settings/stores"
    r = client.post("/console/login", data={"username": "boss", "password": PASSWORD, "next": "https://evil.example/"},
                    follow_redirects=False)
    assert r.headers["location"] == "/console/"


def test_a_page_without_a_session_redirects_to_login(db, client):
    r = client.get("/console/settings/staff?role=guide", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/console/login?next=/console/settings/staff%3Frole%3Dguide"


def test_logout_ends_the_session(db, client, org):
    login(client, "boss")
    token = csrf(client)
    r = client.post("/console/logout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/login"
    assert count(db, StaffToken, StaffToken.revoked_at.is_(None)) == 0
    assert client.get("/console/", follow_redirects=False).status_code == 303


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(db, client, org):
    login(client, "boss")
    r = client.post("/console/settings/stores", data={"name": "没有令牌店"})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "csrf_failed"
    r = client.post("/console/settings/stores", data={"name": "错误令牌店", "csrf_token": "forged"})
    assert r.status_code == 403
    r = client.post("/console/logout", data={})
    assert r.status_code == 403
    assert count(db, Store, Store.name.in_(["没有令牌店", "错误令牌店"])) == 0
    assert count(db, StaffToken, StaffToken.revoked_at.is_(None)) == 1


# ---------------------------------------------------------------- settings index and roles


def test_settings_index_and_roles_matrix(db, client, org):
    login(client, "boss")
    r = client.get("/console/settings")
    assert r.status_code == 200
    for path in ("/console/settings/merchant", "/console/settings/stores", "/console/settings/agents",
                 "/console/settings/staff", "/console/settings/tokens", "/console/settings/roles"):
        assert f'href="{path}"' in r.text
    r = client.get("/console/settings/roles")
    assert r.status_code == 200
    assert "staff.manage" in r.text and "管理比自己角色低的员工" in r.text
    assert r.text.count("✓") == sum(len(roles) for roles in __import__("siyu.core.auth", fromlist=["PERMISSIONS"]).PERMISSIONS.values())


def test_a_guide_sees_only_the_settings_they_may_use(db, client, org):
    login(client, "g1")
    r = client.get("/console/settings")
    assert 'href="/console/settings/merchant"' not in r.text
    assert 'href="/console/settings/agents"' not in r.text
    assert 'href="/console/settings/staff"' in r.text
    assert client.get("/console/settings/merchant").status_code == 403
    assert client.get("/console/settings/agents").status_code == 403


# ---------------------------------------------------------------- merchant


def test_merchant_settings_are_saved_and_the_secret_is_never_shown(db, client, org):
    login(client, "boss")
    r = post(client, "/console/settings/merchant", {
        "name": "一号品牌旗舰", "wechat_miniprogram_appid": "wx1234567890abcdef",
        "wechat_miniprogram_secret": "s3cretvalue0123456789", "protection_days": "45"})
    assert r.status_code == 303 and r.headers["location"] == "/console/settings/merchant?ok=merchant_saved"
    merchant = db.get(Merchant, org["merchant"].id)
    db.refresh(merchant)
    assert merchant.name == "一号品牌旗舰"
    assert merchant.settings == {"wechat_miniprogram_appid": "wx1234567890abcdef",
                                 "wechat_miniprogram_secret": "s3cretvalue0123456789", "protection_days": 45}
    page = client.get(r.headers["location"]).text
    assert "商户设置已保存。" in page
    assert "s3cretvalue0123456789" not in page
    assert "已设置 AppSecret" in page
    assert input_value(page, "protection_days") == "45"

    # a blank secret keeps the one set; the checkbox removes it
    post(client, "/console/settings/merchant", {"name": "一号品牌旗舰", "wechat_miniprogram_appid": "wx1234567890abcdef",
                                                "protection_days": "45"})
    db.refresh(merchant)
    assert merchant.settings["wechat_miniprogram_secret"] == "s3cretvalue0123456789"
    post(client, "/console/settings/merchant", {"name": "一号品牌旗舰", "protection_days": "", "clear_secret": "1"})
    db.refresh(merchant)
    assert merchant.settings["wechat_miniprogram_secret"] == ""
    assert merchant.settings["protection_days"] == 30  # blank is the default
    assert service.public_settings(merchant)["wechat_miniprogram_secret_set"] is False


def test_merchant_settings_errors_are_shown_beside_the_fields(db, client, org):
    login(client, "boss")
    r = post(client, "/console/settings/merchant", {"name": "", "wechat_miniprogram_appid": "wx-不合法",
                                                    "protection_days": "forever"})
    assert r.status_code == 422
    assert field_error(r.text, "name") == "此项必填。"
    assert field_error(r.text, "wechat_miniprogram_appid") == "格式不正确。"
    assert field_error(r.text, "protection_days") == "请输入数字。"
    assert input_value(r.text, "wechat_miniprogram_appid") == "wx-不合法"
    assert input_value(r.text, "protection_days") == "forever"
    r = post(client, "/console/settings/merchant", {"name": "x" * 5000, "protection_days": "99999"})
    assert r.status_code == 422
    assert field_error(r.text, "name") == "最多 100 个字符。"
    assert field_error(r.text, "protection_days") == "数值超出范围。"
    merchant = db.get(Merchant, org["merchant"].id)
    db.refresh(merchant)
    assert merchant.name == "一号品牌" and merchant.settings == {}


# ---------------------------------------------------------------- stores


def test_create_a_store(db, client, org):
    login(client, "boss")
    r = post(client, "/console/settings/stores", {
        "name": "杭州西湖店", "address": "杭州市西湖区北山街1号", "latitude": "30.2590", "longitude": "120.1480",
        "opening_hours": "10:00-21:00", "phone": "0571-8888 0000", "agent_id": str(org["agent"].id)})
    assert r.status_code == 303
    store = db.scalars(select(Store).where(Store.name == "杭州西湖店")).one()
    assert r.headers["location"] == f"/console/settings/stores/{store.id}?ok=store_created"
    assert (store.address, store.latitude, store.longitude, store.opening_hours, store.phone, store.agent_id, store.active) == (
        "杭州市西湖区北山街1号", 30.259, 120.148, "10:00-21:00", "0571-8888 0000", org["agent"].id, True)
    page = client.get(r.headers["location"]).text
    assert "门店已创建。" in page
    assert "杭州西湖店" in client.get("/console/settings/stores").text


def test_store_form_errors_keep_what_was_typed(db, client, org):
    login(client, "boss")
    before = count(db, Store)
    r = post(client, "/console/settings/stores", {"name": "", "address": "上海市某路8号", "latitude": "north",
                                                  "longitude": "500", "phone": "call me"})
    assert r.status_code == 422
    assert field_error(r.text, "name") == "此项必填。"
    assert field_error(r.text, "latitude") == "请输入数字。"
    assert field_error(r.text, "longitude") == "数值超出范围。"
    assert field_error(r.text, "phone") == "格式不正确。"
    assert input_value(r.text, "address") == "上海市某路8号"
    assert input_value(r.text, "latitude") == "north"
    # a name already used: the service's error, beside the field
    r = post(client, "/console/settings/stores", {"name": "广州天河店", "address": "别处"})
    assert r.status_code == 422
    assert field_error(r.text, "name") == "已有同名门店。"
    assert input_value(r.text, "address") == "别处"
    # a huge value
    r = post(client, "/console/settings/stores", {"name": "店" * 10_000})
    assert r.status_code == 422 and field_error(r.text, "name") == "最多 100 个字符。"
    assert count(db, Store) == before


def test_edit_deactivate_and_activate_a_store(db, client, org):
    login(client, "boss")
    store = org["store"]
    r = post(client, f"/console/settings/stores/{store.id}", {
        "name": "广州天河旗舰店", "address": "广州市天河路208号", "latitude": "23.1321", "longitude": "113.3270",
        "opening_hours": "10:00-22:00", "phone": "020-1234", "agent_id": str(org["agent"].id)})
    assert r.status_code == 303 and r.headers["location"] == f"/console/settings/stores/{store.id}?ok=store_saved"
    db.refresh(store)
    assert (store.name, store.address, store.latitude) == ("广州天河旗舰店", "广州市天河路208号", 23.1321)

    r = post(client, f"/console/settings/stores/{store.id}", {"name": "深圳南山店", "latitude": "x"})
    assert r.status_code == 422 and field_error(r.text, "latitude") == "请输入数字。"
    r = post(client, f"/console/settings/stores/{store.id}", {"name": "深圳南山店"})
    assert r.status_code == 422 and field_error(r.text, "name") == "已有同名门店。"
    db.refresh(store)
    assert store.name == "广州天河旗舰店"

    r = post(client, f"/console/settings/stores/{store.id}/deactivate", {})
    assert r.status_code == 303 and r.headers["location"] == "/console/settings/stores?ok=store_deactivated"
    db.refresh(store)
    assert store.active is False
    assert "已停业" in client.get("/console/settings/stores").text
    post(client, f"/console/settings/stores/{store.id}/activate", {})
    db.refresh(store)
    assert store.active is True


def test_a_store_manager_sees_their_store_read_only(db, client, org):
    login(client, "mgr")
    r = client.get("/console/settings/stores")
    assert "广州天河店" in r.text and "深圳南山店" not in r.text
    assert "/console/settings/stores/new" not in r.text
    r = client.get(f"/console/settings/stores/{org['store'].id}")
    assert r.status_code == 200 and '<input name="name"' not in r.text
    assert client.get("/console/settings/stores/new").status_code == 403
    r = post(client, f"/console/settings/stores/{org['store'].id}/deactivate", {})
    assert r.status_code == 403
    db.refresh(org["store"])
    assert org["store"].active is True
    assert client.get(f"/console/settings/stores/{org['other_store'].id}").status_code == 404


# ---------------------------------------------------------------- agents


def test_create_an_agent_and_refuse_a_duplicate(db, client, org):
    login(client, "boss")
    r = post(client, "/console/settings/agents", {"name": "西南代理", "region": "西南"})
    assert r.status_code == 303 and r.headers["location"] == "/console/settings/agents?ok=agent_created"
    assert db.scalars(select(Agent.region).where(Agent.name == "西南代理")).one() == "西南"
    r = post(client, "/console/settings/agents", {"name": "华南代理", "region": "重复"})
    assert r.status_code == 422
    assert field_error(r.text, "name") == "已有同名代理商。"
    assert input_value(r.text, "region") == "重复"
    r = post(client, "/console/settings/agents", {"name": " "})
    assert r.status_code == 422 and field_error(r.text, "name") == "此项必填。"
    assert count(db, Agent, Agent.merchant_id == org["merchant"].id) == 2


# ---------------------------------------------------------------- staff


def test_staff_list_filters(db, client, org):
    login(client, "boss")
    service.disable_staff(db, org["other_guide"].id, actor=service.principal_for(db, org["admin"]))
    page = table(client.get("/console/settings/staff").text, "staff")
    assert all(n in page for n in ("老板", "店长甲", "导购甲", "导购乙"))
    page = table(client.get("/console/settings/staff?role=guide").text, "staff")
    assert "导购甲" in page and "导购乙" in page and "店长甲" not in page
    page = table(client.get(f"/console/settings/staff?store_id={org['store'].id}").text, "staff")
    assert "导购甲" in page and "店长甲" in page and "导购乙" not in page and "老板" not in page
    page = table(client.get("/console/settings/staff?active=0").text, "staff")
    assert "导购乙" in page and "导购甲" not in page
    # junk filters are ignored, not errors
    assert client.get("/console/settings/staff?role=king&store_id=abc&active=maybe").status_code == 200


def test_create_a_guide(db, client, org):
    login(client, "boss")
    r = post(client, "/console/settings/staff", {"role": "guide", "store_id": str(org["store"].id), "name": "新导购",
                                                 "phone": "13800138000", "username": "new.guide", "password": "longenough1"})
    assert r.status_code == 303
    staff = db.scalars(select(Staff).where(Staff.username == "new.guide")).one()
    assert r.headers["location"] == f"/console/settings/staff/{staff.id}?ok=staff_created"
    assert (staff.role, staff.store_id, staff.agent_id, staff.name, staff.phone, staff.merchant_id) == (
        "guide", org["store"].id, org["agent"].id, "新导购", "13800138000", org["merchant"].id)
    assert service.authenticate(db, username="new.guide", password="longenough1").id == staff.id
    assert "员工已创建。" in client.get(r.headers["location"]).text


def test_create_an_agent_admin(db, client, org):
    login(client, "boss")
    r = post(client, "/console/settings/staff", {"role": "agent_admin", "agent_id": str(org["agent"].id), "name": "代理甲",
                                                 "username": "agent.a", "password": "longenough1"})
    assert r.status_code == 303
    staff = db.scalars(select(Staff).where(Staff.username == "agent.a")).one()
    assert (staff.role, staff.agent_id, staff.store_id) == ("agent_admin", org["agent"].id, None)


def test_staff_form_errors_keep_what_was_typed_but_not_the_password(db, client, org):
    login(client, "boss")
    before = count(db, Staff)
    r = post(client, "/console/settings/staff", {"role": "guide", "store_id": str(org["store"].id), "name": "重名",
                                                 "username": "g1", "password": "short"})
    assert r.status_code == 422
    assert field_error(r.text, "password") == "至少 8 个字符。"
    assert input_value(r.text, "name") == "重名" and input_value(r.text, "username") == "g1"
    assert input_value(r.text, "password") == ""
    # the service's rules: a taken username, a guide without a store
    r = post(client, "/console/settings/staff", {"role": "guide", "name": "重名", "username": "g1", "password": "longenough1"})
    assert r.status_code == 422 and field_error(r.text, "store_id") == "请选择该员工所在门店。"
    r = post(client, "/console/settings/staff", {"role": "guide", "store_id": str(org["store"].id), "name": "重名",
                                                 "username": "g1", "password": "longenough1"})
    assert r.status_code == 422 and field_error(r.text, "username") == "用户名已被占用。"
    r = post(client, "/console/settings/staff", {"role": "emperor", "name": "x", "username": "emp", "password": "longenough1"})
    assert r.status_code == 422 and field_error(r.text, "role") == "请从选项中选择。"
    r = post(client, "/console/settings/staff", {"role": "guide", "store_id": "99999999999999999999", "name": "x",
                                                 "username": "big", "password": "longenough1"})
    assert r.status_code == 422 and field_error(r.text, "store_id") == "数值超出范围。"
    assert count(db, Staff) == before


def test_edit_a_staff_member(db, client, org):
    login(client, "boss")
    guide = org["guide"]
    guide_headers = auth_headers(db, guide)
    r = post(client, f"/console/settings/staff/{guide.id}", {"name": "导购甲改", "phone": "13900000000",
                                                             "store_id": str(org["other_store"].id), "password": "brand-new-pass"})
    assert r.status_code == 303 and r.headers["location"] == f"/console/settings/staff/{guide.id}?ok=staff_saved"
    db.refresh(guide)
    assert (guide.name, guide.phone, guide.store_id) == ("导购甲改", "13900000000", org["other_store"].id)
    assert service.authenticate(db, username="g1", password="brand-new-pass").id == guide.id
    # a new password ended the guide's tokens
    assert client.get("/api/v1/admin/me", headers=guide_headers).status_code == 401


def test_staff_edit_errors_change_nothing(db, client, org):
    login(client, "boss")
    guide = org["guide"]
    r = post(client, f"/console/settings/staff/{guide.id}", {"name": "", "phone": "13900000000", "password": "short"})
    assert r.status_code == 422
    assert field_error(r.text, "name") == "此项必填。" and field_error(r.text, "password") == "至少 8 个字符。"
    assert input_value(r.text, "phone") == "13900000000"
    db.refresh(guide)
    assert (guide.name, guide.phone) == ("导购甲", "")


def test_disable_asks_once_then_ends_sessions_and_can_be_undone(db, client, org):
    login(client, "boss")
    guide = org["guide"]
    guide_headers = auth_headers(db, guide)
    # the confirmation says what will happen
    page = client.get(f"/console/settings/staff/{guide.id}/disable").text
    assert "其所有会话和令牌立即失效；其客户将被转移" in page
    assert f'action="/console/settings/staff/{guide.id}/disable"' in page
    # when confirmed
    r = post(client, f"/console/settings/staff/{guide.id}/disable", {})
    assert r.status_code == 303 and r.headers["location"] == f"/console/settings/staff/{guide.id}?ok=staff_disabled"
    db.refresh(guide)
    assert guide.active is False and guide.disabled_at is not None
    assert client.get("/api/v1/admin/me", headers=guide_headers).status_code == 401
    assert count(db, OutboxEvent, OutboxEvent.name == "staff.disabled") == 1
    assert 'data-testid="staff-disabled"' in client.get(r.headers["location"]).text
    # and enabled again
    r = post(client, f"/console/settings/staff/{guide.id}/enable", {})
    assert r.status_code == 303
    db.refresh(guide)
    assert guide.active is True and guide.disabled_at is None


def test_nobody_disables_themselves(db, client, org):
    login(client, "boss")
    admin = org["admin"]
    r = client.get(f"/console/settings/staff/{admin.id}/disable", follow_redirects=False)
    assert r.status_code == 303
    r = post(client, f"/console/settings/staff/{admin.id}/disable", {})
    assert r.status_code == 303 and r.headers["location"].endswith("err=cannot_disable_self")
    assert "不能停用自己。" in client.get(r.headers["location"]).text
    db.refresh(admin)
    assert admin.active is True
    assert count(db, OutboxEvent) == 0


def test_changing_your_own_password_signs_you_out(db, client, org):
    login(client, "boss")
    r = post(client, f"/console/settings/staff/{org['admin'].id}", {"name": "老板", "password": "another-pass-1"})
    assert r.status_code == 303 and r.headers["location"] == "/console/login"
    assert client.get("/console/", follow_redirects=False).status_code == 303


# ---------------------------------------------------------------- roles: guides and managers


def test_a_guide_cannot_reach_staff_creation_and_sees_only_themselves(db, client, org):
    login(client, "g1")
    r = client.get("/console/settings/staff/new")
    assert r.status_code == 403
    assert "text/html" in r.headers["content-type"] and "你没有执行此操作的权限。" in r.text
    page = client.get("/console/settings/staff").text
    assert "/console/settings/staff/new" not in page
    page = table(page, "staff")
    assert "导购甲" in page
    assert all(n not in page for n in ("老板", "店长甲", "导购乙"))
    assert client.get(f"/console/settings/staff/{org['other_guide'].id}").status_code == 404
    assert client.get(f"/console/settings/staff/{org['manager'].id}").status_code == 404
    before = count(db, Staff)
    r = post(client, "/console/settings/staff", {"role": "guide", "store_id": str(org["store"].id), "name": "x",
                                                 "username": "sneaky", "password": "longenough1"})
    assert r.status_code == 403
    assert count(db, Staff) == before
    # their own page: they may edit their name, but not disable anyone
    page = client.get(f"/console/settings/staff/{org['guide'].id}").text
    assert '<input name="name"' in page and "disable-staff" not in page


def test_a_store_manager_creates_guides_in_their_store_only(db, client, org):
    login(client, "mgr")
    page = client.get("/console/settings/staff/new").text
    assert 'value="guide"' in page and 'value="store_manager"' not in page and 'value="brand_admin"' not in page
    r = post(client, "/console/settings/staff", {"role": "guide", "store_id": str(org["store"].id), "name": "店员",
                                                 "username": "clerk", "password": "longenough1"})
    assert r.status_code == 303
    before = count(db, Staff)
    r = post(client, "/console/settings/staff", {"role": "store_manager", "store_id": str(org["store"].id), "name": "x",
                                                 "username": "peer", "password": "longenough1"})
    assert r.status_code == 403
    r = post(client, "/console/settings/staff", {"role": "guide", "store_id": str(org["other_store"].id), "name": "x",
                                                 "username": "elsewhere", "password": "longenough1"})
    assert r.status_code == 404
    assert count(db, Staff) == before


# ---------------------------------------------------------------- tenancy


def test_another_merchants_objects_are_404(db, client, org):
    other = make_merchant(db)
    other_store = make_store(db, merchant=other, name="别家店")
    other_guide = make_staff(db, merchant=other, role=Role.GUIDE, store=other_store, name="别家导购")
    login(client, "boss")
    token = csrf(client)
    assert client.get(f"/console/settings/stores/{other_store.id}").status_code == 404
    assert client.get(f"/console/settings/staff/{other_guide.id}").status_code == 404
    assert client.get(f"/console/settings/staff/{other_guide.id}/disable").status_code == 404
    assert post(client, f"/console/settings/stores/{other_store.id}", {"name": "抢走"}, token=token).status_code == 404
    assert post(client, f"/console/settings/stores/{other_store.id}/deactivate", {}, token=token).status_code == 404
    assert post(client, f"/console/settings/staff/{other_guide.id}", {"name": "抢走"}, token=token).status_code == 404
    assert post(client, f"/console/settings/staff/{other_guide.id}/disable", {}, token=token).status_code == 404
    r = post(client, "/console/settings/staff", {"role": "guide", "store_id": str(other_store.id), "name": "x",
                                                 "username": "cross", "password": "longenough1"}, token=token)
    assert r.status_code == 404
    db.refresh(other_store)
    db.refresh(other_guide)
    assert (other_store.name, other_store.active, other_guide.name, other_guide.active) == ("别家店", True, "别家导购", True)
    assert count(db, Staff, Staff.username == "cross") == 0
    assert "别家店" not in client.get("/console/settings/stores").text
    # ids that are not ids
    assert client.get("/console/settings/stores/abc").status_code == 422
    assert client.get(f"/console/settings/staff/{2**60}").status_code == 422


# ---------------------------------------------------------------- API tokens


def test_api_tokens_are_shown_once_listed_and_revoked(db, client, org):
    login(client, "boss")
    r = post(client, "/console/settings/tokens", {"label": "集成甲"})
    assert r.status_code == 201
    raw = re.search(r'value="([^"]+)" data-testid="new-token"', r.text).group(1)
    assert client.get("/api/v1/admin/me", headers={"Authorization": f"Bearer {raw}"}).json()["username"] == "boss"
    page = client.get("/console/settings/tokens").text
    assert "集成甲" in page and raw not in page
    row = db.scalars(select(StaffToken).where(StaffToken.label == "集成甲")).one()
    assert row.kind == "api" and row.staff_id == org["admin"].id
    r = post(client, f"/console/settings/tokens/{row.id}/revoke", {})
    assert r.status_code == 303 and r.headers["location"] == "/console/settings/tokens?ok=token_revoked"
    assert client.get("/api/v1/admin/me", headers={"Authorization": f"Bearer {raw}"}).status_code == 401
    assert "集成甲" not in client.get("/console/settings/tokens").text


def test_api_token_errors(db, client, org):
    login(client, "boss")
    before = count(db, StaffToken)
    r = post(client, "/console/settings/tokens", {"label": ""})
    assert r.status_code == 422 and field_error(r.text, "label") == "此项必填。"
    r = post(client, "/console/settings/tokens", {"label": "x" * 101})
    assert r.status_code == 422 and field_error(r.text, "label") == "最多 100 个字符。"
    assert count(db, StaffToken) == before
    # someone else's token is not found
    other_row = service.issue_token(db, org["guide"], kind="api", label="导购的")[1]
    assert post(client, f"/console/settings/tokens/{other_row.id}/revoke", {}).status_code == 404
    db.refresh(other_row)
    assert other_row.revoked_at is None


def test_english_labels_through_the_language_cookie(db, client, org):
    login(client, "boss")
    client.cookies.set("siyu_lang", "en")
    page = client.get("/console/settings/staff/new").text
    assert "New staff member" in page and "Create staff member" in page
    client.cookies.set("siyu_lang", "zh_CN")
    assert "新增员工" in client.get("/console/settings/staff/new").text


# ---------------------------------------------------------------- the same in the API


def test_merchant_settings_api(db, client, org):
    headers = auth_headers(db, org["admin"])
    r = client.patch("/api/v1/admin/merchant/settings", headers=headers,
                     json={"wechat_miniprogram_appid": "wxabc", "wechat_miniprogram_secret": "topsecret", "protection_days": 14})
    assert r.status_code == 200
    assert r.json() == {"id": org["merchant"].id, "slug": org["merchant"].slug, "name": "一号品牌",
                        "wechat_miniprogram_appid": "wxabc", "wechat_miniprogram_secret_set": True, "protection_days": 14}
    assert "topsecret" not in client.get("/api/v1/admin/merchant/settings", headers=headers).text
    # bad input changes nothing
    for body in ({"protection_days": 0}, {"protection_days": "x"}, {"name": "x" * 101}, {"wechat_miniprogram_appid": "wx 1"},
                 {"protection_days": 2**40}):
        r = client.patch("/api/v1/admin/merchant/settings", headers=headers, json=body)
        assert r.status_code == 422, body
    r = client.patch("/api/v1/admin/merchant/settings", headers={**headers, "Content-Type": "application/json"},
                     content=b"{not json")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    db.refresh(org["merchant"])
    assert org["merchant"].settings["protection_days"] == 14
    # only the brand
    guide_headers = auth_headers(db, org["guide"])
    assert client.get("/api/v1/admin/merchant/settings", headers=guide_headers).status_code == 403
    assert client.patch("/api/v1/admin/merchant/settings", headers=guide_headers, json={"name": "x"}).status_code == 403


def test_api_token_list_and_revoke_api(db, client, org):
    headers = auth_headers(db, org["admin"])
    created = client.post("/api/v1/admin/tokens", headers=headers, json={"label": "对接"}).json()
    items = client.get("/api/v1/admin/tokens", headers=headers).json()["items"]
    assert [(t["id"], t["label"]) for t in items if t["label"]] == [(created["id"], "对接")]
    assert "access_token" not in items[0]
    assert client.delete(f"/api/v1/admin/tokens/{created['id']}", headers=headers).status_code == 204
    assert client.get("/api/v1/admin/me", headers={"Authorization": f"Bearer {created['access_token']}"}).status_code == 401
    assert client.delete(f"/api/v1/admin/tokens/{created['id'] + 10_000}", headers=headers).status_code == 404
    assert client.delete("/api/v1/admin/tokens/0", headers=headers).status_code == 422
