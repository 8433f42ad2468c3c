from __future__ import annotations

import pytest

from siyu.core import i18n
from siyu.core.errors import NotFound, field_error


@pytest.mark.parametrize(("header", "expected"), [
    ("en-US,en;q=0.9", "en"),
    ("zh-CN,zh;q=0.9,en;q=0.8", "zh_CN"),
    ("fr-FR, zh-TW;q=0.5", "zh_CN"),       # unsupported languages are skipped; every zh is zh_CN
    ("en;q=0.1, zh;q=0.9", "zh_CN"),       # q order, not header order
    ("zh;q=0.5, en;q=0.5", "zh_CN"),       # equal q: header order
    ("en;q=bogus, zh", "zh_CN"),           # an unreadable q counts as 0
    ("fr, de", None),
    ("", None),
    (None, None),
])
def test_accept_language(header, expected):
    assert i18n.from_accept_language(header) == expected


@pytest.mark.parametrize(("value", "expected"), [("zh-CN", "zh_CN"), ("ZH_cn", "zh_CN"), ("en_GB", "en"), ("fr", None), ("", None)])
def test_normalise(value, expected):
    assert i18n.normalise(value) == expected


def test_zh_cn_catalogue_translates_and_english_is_the_message_id():
    assert i18n.gettext("Not found.", "zh_CN") == "未找到。"
    assert i18n.gettext("Not found.", "en") == "Not found."
    assert i18n.gettext("A message nobody translated.", "zh_CN") == "A message nobody translated."


def test_catalogues_of_every_domain_are_merged():
    # core.po, merchants.po and analytics.po are all read
    assert i18n.gettext("Settings", "zh_CN") == "设置"
    assert i18n.gettext("Store created.", "zh_CN") == "门店已创建。"
    assert i18n.gettext("New customers today", "zh_CN") == "今日新增客户"


def test_parameters_are_filled_in_and_bad_ones_do_not_raise():
    assert i18n.gettext("Use at most {n} characters.", "en", n=5) == "Use at most 5 characters."
    assert i18n.gettext("Use at most {n} characters.", "zh_CN", n=5) == "最多 5 个字符。"
    assert i18n.gettext("{missing} stays", "en", other=1) == "{missing} stays"


def test_the_current_locale_is_a_context_variable():
    token = i18n.set_locale("en")
    try:
        assert i18n.get_locale() == "en"
        assert NotFound().translated() == "Not found."
        assert field_error("name", "This username is taken.").details == {"fields": {"name": "This username is taken."}}
    finally:
        i18n._current.reset(token)
    assert i18n.get_locale() == "zh_CN"
    assert NotFound().translated() == "未找到。"


def test_api_errors_follow_accept_language(client):
    r = client.get("/api/v1/admin/me", headers={"Accept-Language": "en"})
    assert r.status_code == 401 and r.json()["error"]["message"] == "Please sign in."
    r = client.get("/api/v1/admin/me", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert r.json()["error"]["message"] == "请先登录。"
    r = client.get("/api/v1/admin/me")
    assert r.json()["error"]["message"] == "请先登录。"  # zh-CN by default


def test_pages_take_the_language_cookie_over_accept_language(client):
    r = client.get("/console/login", headers={"Accept-Language": "zh-CN"}, cookies={"siyu_lang": "en"})
    assert "Sign in to the console" in r.text
    r = client.get("/console/login", headers={"Accept-Language": "en"})
    assert "Sign in to the console" in r.text
    r = client.get("/console/login")
    assert "登录管理后台" in r.text


def test_switching_language_sets_the_cookie_and_goes_back(client):
    r = client.get("/lang/en", headers={"Referer": "http://testserver/console/login?next=/console/"}, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/console/login?next=/console/"
    assert "siyu_lang=en" in r.headers["set-cookie"]


def test_templates_fill_both_placeholder_styles_and_escape_values():
    from siyu.core.templating import templates

    token = i18n.set_locale("en")
    try:
        out = templates.env.from_string(
            '{{ _("Only {n} left", n=3) }}|{{ _("up to %(n)s", n=2) }}|{{ _("50% off") }}|{{ _("Hi {name}", name="<b>") }}'
        ).render()
    finally:
        i18n._current.reset(token)
    assert out == "Only 3 left|up to 2|50% off|Hi &lt;b&gt;"
