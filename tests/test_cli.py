"""The `siyu` command line, driven through Typer's runner (servers are not started)."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from siyu import cli, migrate
from siyu.config import reset_settings
from siyu.db import set_database
from tests.conftest import PG_URL, ensure_pg_database, pg_url_named

runner = CliRunner()


@pytest.fixture(autouse=True)
def restore_environment(monkeypatch: pytest.MonkeyPatch, tmp_path):
    """The CLI sets SIYU_* variables and the process database; put them back afterwards."""
    monkeypatch.setenv("SIYU_DATABASE_URL", os.environ["SIYU_DATABASE_URL"])
    monkeypatch.setenv("SIYU_DEV_LOGIN", os.environ.get("SIYU_DEV_LOGIN", "1"))
    monkeypatch.chdir(tmp_path)
    served: list[tuple] = []
    monkeypatch.setattr(cli, "_serve", lambda host, port, workers: served.append((host, port, workers)))
    yield served
    from siyu import db

    if db._database is not None:
        db._database.dispose()
    set_database(None)
    monkeypatch.undo()
    reset_settings()


def small_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    real = cli._seed
    monkeypatch.setattr(cli, "_seed", lambda url, scale: real(url, 0.02))


def test_help_explains_every_command_and_hides_makemigration() -> None:
    result = runner.invoke(cli.app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "migrate", "seed-demo", "demo", "worker", "tick", "bench"):
        assert command in result.output
    assert "makemigration" not in result.output
    assert runner.invoke(cli.app, ["makemigration", "--help"]).exit_code == 0
    assert "requests/s" in runner.invoke(cli.app, ["bench", "api", "--help"]).output


def test_migrate_brings_a_new_sqlite_database_to_head(tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/m.db"
    result = runner.invoke(cli.app, ["migrate", "--database-url", url])
    assert result.exit_code == 0, result.output
    assert f"revision {migrate.head_revision()}" in result.output
    assert migrate.is_up_to_date(url)


def test_seed_demo_builds_once_refuses_twice_and_resets(tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/d.db"

    first = runner.invoke(cli.app, ["seed-demo", "--database-url", url, "--scale", "0.02"])
    assert first.exit_code == 0, first.output
    assert "Demo merchant 'demo' built in" in first.output

    again = runner.invoke(cli.app, ["seed-demo", "--database-url", url, "--scale", "0.02"])
    assert again.exit_code == 1
    assert "--reset" in again.output

    reset = runner.invoke(cli.app, ["seed-demo", "--database-url", url, "--scale", "0.02", "--reset"])
    assert reset.exit_code == 0, reset.output
    assert "Removed" in reset.output and "built in" in reset.output


def test_seed_demo_rejects_a_scale_out_of_range(tmp_path) -> None:
    result = runner.invoke(cli.app, ["seed-demo", "--database-url", f"sqlite:///{tmp_path}/x.db", "--scale", "0"])
    assert result.exit_code == 2
    assert not (tmp_path / "x.db").exists()


def test_tick_prints_every_tick_result_as_json(tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/t.db"
    migrate.upgrade(url)
    result = runner.invoke(cli.app, ["tick", "--database-url", url])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["core.events.retry"] == 0


def test_serve_migrates_sqlite_then_serves(restore_environment, tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    result = runner.invoke(cli.app, ["serve", "--database-url", url, "--port", "8123", "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert restore_environment == [("127.0.0.1", 8123, 2)]
    assert os.environ["SIYU_DATABASE_URL"] == url  # the workers (other processes) read it
    assert migrate.is_up_to_date(url)


@pytest.mark.skipif(not PG_URL, reason="needs SIYU_TEST_PG_URL")
def test_serve_refuses_a_postgresql_database_that_is_behind(restore_environment) -> None:
    from sqlalchemy import create_engine, text

    url = pg_url_named("cli")
    ensure_pg_database(url)
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()

    result = runner.invoke(cli.app, ["serve", "--database-url", url])

    assert result.exit_code == 1
    assert "siyu migrate" in result.output
    assert restore_environment == []


def test_demo_seeds_when_missing_prints_urls_and_logins_then_serves(restore_environment, tmp_path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    small_seed(monkeypatch)
    result = runner.invoke(cli.app, ["demo", "--port", "8000"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "siyu-demo.db").exists()
    assert "built in" in result.output
    assert "http://127.0.0.1:8000/console/" in result.output
    assert "http://127.0.0.1:8000/shop/demo/" in result.output
    assert "admin / siyu-demo" in result.output and "guide1 / siyu-demo" in result.output
    assert os.environ["SIYU_DEV_LOGIN"] == "1"
    assert restore_environment == [("127.0.0.1", 8000, 1)]

    # a second start reuses the demo
    again = runner.invoke(cli.app, ["demo"])
    assert again.exit_code == 0, again.output
    assert "existing demo" in again.output


def test_worker_runs_the_huey_consumer_with_periodic_tasks(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from siyu import tasks

    started: list[dict] = []

    class FakeConsumer:
        def run(self) -> None:
            started.append({"ran": True})

    def create_consumer(**options):
        started.append(options)
        return FakeConsumer()

    monkeypatch.setattr(tasks.huey, "create_consumer", create_consumer)
    monkeypatch.setattr("logging.basicConfig", lambda **kw: None)
    result = runner.invoke(cli.app, ["worker", "--workers", "3", "--database-url", f"sqlite:///{tmp_path}/w.db"])
    assert result.exit_code == 0, result.output
    assert started == [{"workers": 3, "periodic": True, "worker_type": "thread"}, {"ran": True}]
