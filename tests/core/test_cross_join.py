"""`siyu.db.cross_join`: SQLite runs it as `CROSS JOIN … ON` (the left side is the outer loop); every
database returns the rows of the plain inner join."""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite

from siyu.db import cross_join

_meta = MetaData()
rows = Table("cj_rows", _meta, Column("id", Integer, primary_key=True), Column("owner", Integer))
owners = Table("cj_owners", _meta, Column("id", Integer, primary_key=True), Column("name", Integer))


def _count_per_owner():
    joined = cross_join(rows, owners, rows.c.owner == owners.c.id)
    return select(owners.c.id, func.count()).select_from(joined).group_by(owners.c.id).order_by(owners.c.id)


def test_sqlite_writes_a_cross_join_and_postgresql_a_join():
    stmt = _count_per_owner()
    assert "FROM cj_rows CROSS JOIN cj_owners ON cj_rows.owner = cj_owners.id" in str(
        stmt.compile(dialect=sqlite.dialect()))
    pg = str(stmt.compile(dialect=postgresql.dialect()))
    assert "FROM cj_rows JOIN cj_owners ON cj_rows.owner = cj_owners.id" in pg and "CROSS" not in pg


def test_it_returns_the_inner_joins_rows(db):
    conn = db.connection()
    _meta.create_all(conn)
    try:
        conn.execute(owners.insert(), [{"id": 1, "name": 10}, {"id": 2, "name": 20}, {"id": 3, "name": 30}])
        conn.execute(rows.insert(), [{"id": i, "owner": o} for i, o in enumerate([1, 1, 2, 9, 1], start=1)])
        assert [tuple(r) for r in conn.execute(_count_per_owner())] == [(1, 3), (2, 1)]
        if conn.dialect.name == "sqlite":  # the left table is the outer loop, the right one looked up by key
            sql = str(_count_per_owner().compile(conn, compile_kwargs={"literal_binds": True}))
            plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
            assert plan.index("cj_rows") < plan.index("cj_owners"), plan
    finally:
        _meta.drop_all(conn)
