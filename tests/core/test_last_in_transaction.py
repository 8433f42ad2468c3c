"""`siyu.db.last_in_transaction`: a queued write runs once, after everything else the transaction
wrote and before its commit; never after a rollback, nor when a savepoint is released."""

from __future__ import annotations

from sqlalchemy import text

from siyu.db import Database, last_in_transaction, run_last


def _database(tmp_path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'last.db'}")
    with database.engine.begin() as conn:
        conn.execute(text("CREATE TABLE log (id INTEGER PRIMARY KEY, what TEXT)"))
    return database


def _log(database: Database) -> list[str]:
    with database.engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT what FROM log ORDER BY id"))]


def _write(what: str):
    return lambda s: s.execute(text("INSERT INTO log (what) VALUES (:w)"), {"w": what})


def test_a_queued_write_runs_last_before_the_commit(tmp_path):
    database = _database(tmp_path)
    with database.scope() as session:
        last_in_transaction(session, _write("hot counter"))
        _write("order")(session)
        with session.begin_nested():  # releasing a savepoint is not the commit
            _write("line")(session)
        assert [r[0] for r in session.execute(text("SELECT what FROM log ORDER BY id"))] == ["order", "line"]
    assert _log(database) == ["order", "line", "hot counter"]


def test_a_rolled_back_transaction_runs_nothing_and_forgets_the_queue(tmp_path):
    database = _database(tmp_path)
    session = database.make_session()
    last_in_transaction(session, _write("hot counter"))
    _write("order")(session)
    session.rollback()
    _write("next")(session)
    session.commit()
    session.close()
    assert _log(database) == ["next"]


def test_run_last_runs_the_queue_at_once_and_only_once(tmp_path):
    database = _database(tmp_path)
    with database.scope() as session:
        last_in_transaction(session, _write("reserve"))
        _write("answer")(session)
        run_last(session)
        assert [r[0] for r in session.execute(text("SELECT what FROM log ORDER BY id"))] == ["answer", "reserve"]
    assert _log(database) == ["answer", "reserve"]
