"""`siyu.db.add_written` / `update_written`: rows written as a flush would write them, without the unit of
work: generated ids and defaults read back, `onupdate` columns kept, the objects loaded and clean after, the
session's other pending changes written first."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from siyu.customers.models import Customer, CustomerIdentity
from siyu.db import add_written, update_written
from siyu.merchants.models import Merchant
from tests.factories.merchants import make_merchant


@pytest.fixture
def merchant(db: Session) -> Merchant:
    return make_merchant(db)


class _Sent:
    def __init__(self, db: Session) -> None:
        self.conn, self.sent = db.connection(), []

    def _listen(self, _conn, _cursor, statement, *_args) -> None:  # noqa: ANN001
        self.sent.append(statement.split()[0].upper())

    def __enter__(self) -> list[str]:
        event.listen(self.conn, "before_cursor_execute", self._listen)
        return self.sent

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.conn, "before_cursor_execute", self._listen)


def test_add_written_reads_back_ids_and_defaults_and_leaves_the_objects_clean(db: Session, merchant: Merchant,
                                                                              backend: str) -> None:
    people = [Customer(merchant_id=merchant.id, nickname=name) for name in ("甲", "乙", "丙")]
    with _Sent(db) as sent:
        add_written(db, people)
    # one INSERT … RETURNING for the three on PostgreSQL (SQLite's driver takes one row per statement when
    # the rows must come back in order)
    assert sent == (["INSERT"] if backend == "postgresql" else ["INSERT"] * 3)
    assert [p.nickname for p in people] == ["甲", "乙", "丙"] and people[0].id < people[1].id < people[2].id
    assert people[0].paid_orders == 0 and people[0].region == "" and people[0].created_at is not None
    assert all(p in db and p not in db.new and p not in db.dirty for p in people)
    assert db.get(Customer, people[1].id) is people[1]  # the session's own copy, no read
    row = db.execute(select(Customer.nickname, Customer.paid_orders).where(Customer.id == people[2].id)).one()
    assert tuple(row) == ("丙", 0)


def test_add_written_refuses_objects_set_unlike_or_with_related_objects(db: Session, merchant: Merchant) -> None:
    with pytest.raises(ValueError):
        add_written(db, [Customer(merchant_id=merchant.id, nickname="a"),
                         Customer(merchant_id=merchant.id, nickname="b", region="上海")])
    assert not db.new


def test_update_written_writes_one_update_with_the_objects_own_changes(db: Session, merchant: Merchant) -> None:
    customer = Customer(merchant_id=merchant.id, nickname="甲")
    add_written(db, [customer])
    before = customer.updated_at
    customer.region = "杭州"  # a change of its own, not flushed yet
    other = Customer(merchant_id=merchant.id, nickname="乙")
    db.add(other)  # another pending change of the session: written first
    with _Sent(db) as sent:
        update_written(db, customer, {"notes": "VIP", "paid_orders": 3})
    assert sent == ["INSERT", "UPDATE"]
    assert other.id is not None
    assert (customer.notes, customer.paid_orders, customer.region) == ("VIP", 3, "杭州")
    assert customer.updated_at >= before and customer not in db.dirty and not db.is_modified(customer)
    with _Sent(db) as sent:
        db.flush()
    assert sent == []  # nothing left to write
    db.expire(customer)
    assert (customer.notes, customer.paid_orders, customer.region) == ("VIP", 3, "杭州")
    assert customer.updated_at >= before


def test_update_written_fails_loudly_when_the_row_is_gone(db: Session, merchant: Merchant) -> None:
    customer = Customer(merchant_id=merchant.id, nickname="甲")
    add_written(db, [customer])
    db.execute(Customer.__table__.delete().where(Customer.__table__.c.id == customer.id))
    with pytest.raises(RuntimeError):
        update_written(db, customer, {"notes": "x", "updated_at": dt.datetime.now(dt.UTC)})


def test_identity_rows_too(db: Session, merchant: Merchant) -> None:
    customer = Customer(merchant_id=merchant.id, nickname="甲")
    add_written(db, [customer])
    ident = CustomerIdentity(merchant_id=merchant.id, customer_id=customer.id, kind="openid", value="o-1")
    add_written(db, [ident])
    assert ident.id is not None and ident.created_at is not None
