"""Bad input found by the schemathesis suite (tests/fuzz), pinned down on both backends."""

from __future__ import annotations

import pytest

from siyu.core.auth import Role
from tests.factories.merchants import auth_headers, make_merchant, make_staff, make_store


@pytest.mark.parametrize("role", ["bogus", "BRAND_ADMIN", "x" * 500])
def test_staff_list_refuses_an_unknown_role_with_422(db, client, role):
    # given: the role filter used to be any string sent to the database as is (a NUL byte in it is now
    # refused before any handler runs: tests/core/test_input_guard.py)
    merchant = make_merchant(db)
    admin = make_staff(db, merchant=merchant)
    # when
    r = client.get("/api/v1/admin/staff", params={"role": role}, headers=auth_headers(db, admin))
    # then
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "validation_error"
    assert set(error["details"]["fields"]) == {"role"}


def test_staff_list_still_filters_by_a_known_role(db, client):
    # given
    merchant = make_merchant(db)
    admin = make_staff(db, merchant=merchant)
    store = make_store(db, merchant=merchant)
    guide = make_staff(db, merchant=merchant, role=Role.GUIDE, store=store)
    # when
    r = client.get("/api/v1/admin/staff", params={"role": "guide"}, headers=auth_headers(db, admin))
    # then
    assert r.status_code == 200
    assert [s["id"] for s in r.json()["items"]] == [guide.id]
