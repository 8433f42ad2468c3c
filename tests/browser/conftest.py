"""Browser tests: a live uvicorn server in a background thread and Debian's chromium via Playwright.

Contract (other domains' browser tests rely on it):
- `live_server` (session): `.url` ("http://127.0.0.1:PORT"), `.database` (a siyu.db.Database on a
  committed SQLite file whose schema comes from the models), `.seed_admin()` -> (username, password,
  merchant_slug): a new merchant with a brand admin, committed, unique on every call, and
  `.login(page, username, password)` which signs in through /console/login.
- `page`: a Playwright sync-API Page in a fresh browser context per test, desktop viewport
  (1280x800); tests set a phone viewport themselves (`page.set_viewport_size({"width": 390, ...})`).

The live server's app is bound to its own Database (`create_app(database=...)`), so the unit
tests' `db` fixture, which swaps the process-global database, never reaches it. Browser tests run
last in a session (they share the process with an event loop Playwright drives); under pytest-xdist
they are one group (`xdist_group("browser")`, see tests/conftest.py), run by one worker after its
other tests, so there is one live server and one chromium per run.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
DESKTOP = {"width": 1280, "height": 800}
PASSWORD = "browser-pass-123"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark everything under tests/browser and move it to the end of the run (after pytest has grouped
    items by the parametrized session fixtures, which would otherwise scatter them)."""
    here = Path(__file__).parent
    browser, other = [], []
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.browser)
            browser.append(item)
        else:
            other.append(item)
    items[:] = other + browser


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    def __init__(self, url: str, database) -> None:
        self.url = url
        self.database = database
        self._seq = itertools.count(1)

    def seed_admin(self) -> tuple[str, str, str]:
        """A new merchant with a brand admin (committed); returns (username, password, merchant slug)."""
        from siyu.core.auth import Role, hash_password
        from siyu.merchants import service
        from siyu.merchants.models import Staff

        n = next(self._seq)
        stamp = f"{os.getpid() % 10000}{n:03d}{int(time.time() * 1000) % 100000}"
        slug, username = f"b{stamp}", f"badmin{stamp}"
        with self.database.scope() as session:
            merchant = service.create_merchant(session, slug=slug, name=f"浏览器测试品牌{n}")
            session.add(Staff(merchant_id=merchant.id, username=username, password_hash=hash_password(PASSWORD),
                              name=f"管理员{n}", role=Role.BRAND_ADMIN.value, active=True))
        return username, PASSWORD, slug

    def login(self, page, username: str, password: str) -> None:
        """Sign in through the console's login form; the page ends on /console/."""
        page.goto(f"{self.url}/console/login")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        with page.expect_navigation():
            page.click("button[type=submit]")


@pytest.fixture(scope="session")
def live_server():
    import uvicorn

    from siyu.app import create_app
    from siyu.config import reset_settings
    from siyu.db import Base, Database, import_all_models

    os.environ["SIYU_DEV_LOGIN"] = "1"
    reset_settings()
    tmp = tempfile.mkdtemp(prefix="siyu-live-")
    import_all_models()
    database = Database(f"sqlite:///{tmp}/live.db")
    Base.metadata.create_all(database.engine)
    app = create_app(configure_database=False, database=database)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, name="siyu-live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the live server did not start")
        time.sleep(0.05)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", database)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        database.dispose()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"!!! {CHROMIUM} IS MISSING: BROWSER TESTS SKIPPED (apt-get install chromium) !!!")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()
