"""Fixtures and helpers the promotions tests share."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from siyu.merchants.models import Merchant
from tests.factories.merchants import PASSWORD, make_merchant, make_staff


@pytest.fixture
def merchant(db: Session) -> Merchant:
    """A merchant of the test's own (on each database `db` runs on)."""
    return make_merchant(db)


def csrf(html: str) -> str:
    """The CSRF token of the page's form."""
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]


def staff_sign_in(client: TestClient, db: Session, merchant: Merchant, form_page: str) -> str:
    """A new staff member of `merchant` signs in to the console; the CSRF token of `form_page`."""
    staff = make_staff(db, merchant=merchant)
    r = client.post("/console/login", data={"username": staff.username, "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303
    return csrf(client.get(form_page).text)


def run_at_once(target: Callable[..., Any], args: Iterable[tuple[Any, ...]], *, timeout: float = 120) -> None:
    """Run `target(*a)` for each `a` in threads of their own, all started before any is joined; fails when
    one is still running after `timeout` seconds."""
    threads = [threading.Thread(target=target, args=a) for a in args]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    assert not any(t.is_alive() for t in threads)
