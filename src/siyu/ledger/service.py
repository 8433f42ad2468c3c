"""Posting to ledgers. The balance on the account row and the sum of its entries always agree:
both change in one transaction, the balance by one conditional UPDATE that cannot go negative.

Other domains use these functions with their own `kind` ("stock", "points", "stored_value",
"commission"); they never touch the tables directly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, String, bindparam, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from siyu.core import clock
from siyu.core.auth import Principal
from siyu.core.errors import Conflict, ValidationFailed
from siyu.core.pagination import Page, paginate
from siyu.db import UTCDateTime
from siyu.ledger.models import LedgerAccount, LedgerEntry

MAX_KEY_LENGTH = 200
MAX_AMOUNT = 2**53


class InsufficientBalance(Conflict):
    code = "insufficient_balance"
    message = "Not enough balance for this change."


@dataclasses.dataclass(frozen=True)
class Mismatch:
    account_id: int
    kind: str
    owner_type: str
    owner_id: int
    balance: int
    entries_sum: int


def _find_account(session: Session, merchant_id: int, kind: str, owner_type: str, owner_id: int) -> LedgerAccount | None:
    return session.scalars(
        select(LedgerAccount).where(
            LedgerAccount.merchant_id == merchant_id,
            LedgerAccount.kind == kind,
            LedgerAccount.owner_type == owner_type,
            LedgerAccount.owner_id == owner_id,
        )
    ).first()


def account(session: Session, *, merchant_id: int, kind: str, owner_type: str, owner_id: int,
            create: bool = True) -> LedgerAccount | None:
    """The account of this owner and kind; opened with balance 0 when missing (and `create`).

    Two transactions opening the same account at once: the loser's insert fails on the unique
    constraint inside a savepoint and it reads the winner's row."""
    found = _find_account(session, merchant_id, kind, owner_type, owner_id)
    if found is not None or not create:
        return found
    try:
        with session.begin_nested():
            row = LedgerAccount(merchant_id=merchant_id, kind=kind, owner_type=owner_type, owner_id=owner_id, balance=0)
            session.add(row)
    except IntegrityError:
        found = _find_account(session, merchant_id, kind, owner_type, owner_id)
        if found is None:
            raise
        return found
    return row


def find_entry(session: Session, *, merchant_id: int, idempotency_key: str) -> LedgerEntry | None:
    return session.scalars(
        select(LedgerEntry).where(LedgerEntry.merchant_id == merchant_id, LedgerEntry.idempotency_key == idempotency_key)
    ).first()


def post(session: Session, *, merchant_id: int, kind: str, owner_type: str, owner_id: int, delta: int, reason: str,
         idempotency_key: str, note: str = "", ref_type: str | None = None, ref_id: int | None = None,
         actor: Principal | None = None) -> LedgerEntry:
    """Move the balance by `delta` and append the entry that says why.

    The balance changes by one conditional UPDATE (`balance + delta >= 0`), so concurrent posts can
    never take it below zero; when it would, InsufficientBalance is raised and nothing moves. A
    replay of an idempotency key returns the first entry and moves nothing (a racing duplicate
    fails on the unique constraint and its transaction rolls back)."""
    if not idempotency_key or len(idempotency_key) > MAX_KEY_LENGTH:
        raise ValidationFailed("The idempotency key is missing or too long.", code="invalid_idempotency_key")
    if not isinstance(delta, int) or isinstance(delta, bool) or abs(delta) > MAX_AMOUNT:
        raise ValidationFailed("The amount is out of range.", code="invalid_amount")
    existing = find_entry(session, merchant_id=merchant_id, idempotency_key=idempotency_key)
    if existing is not None:
        acct = session.get(LedgerAccount, existing.account_id)
        if acct is None or (acct.kind, acct.owner_type, acct.owner_id) != (kind, owner_type, owner_id) \
                or existing.delta != delta:
            raise Conflict("This idempotency key was used for a different movement.", code="idempotency_key_reused")
        return existing
    acct = account(session, merchant_id=merchant_id, kind=kind, owner_type=owner_type, owner_id=owner_id)
    assert acct is not None
    now = clock.now()
    new_balance = session.execute(
        update(LedgerAccount)
        .where(LedgerAccount.id == acct.id, LedgerAccount.balance + delta >= 0)
        .values(balance=LedgerAccount.balance + delta, updated_at=now)
        .returning(LedgerAccount.balance)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if new_balance is None:
        current = session.scalar(select(LedgerAccount.balance).where(LedgerAccount.id == acct.id)) or 0
        set_committed_value(acct, "balance", current)
        raise InsufficientBalance(details={"balance": current, "delta": delta, "kind": kind,
                                           "owner_type": owner_type, "owner_id": owner_id})
    set_committed_value(acct, "balance", new_balance)
    set_committed_value(acct, "updated_at", now)
    entry = LedgerEntry(
        merchant_id=merchant_id, account_id=acct.id, delta=delta, balance_after=new_balance, reason=reason[:40],
        note=(note or "")[:500], idempotency_key=idempotency_key, ref_type=ref_type, ref_id=ref_id,
        actor_type=actor.kind if actor else "system", actor_id=actor.subject_id if actor else None, created_at=now,
    )
    session.add(entry)
    session.flush()
    return entry


def post_new(session: Session, *, merchant_id: int, kind: str, owner_type: str, owner_id: int, delta: int,
             reason: str, idempotency_key: str, note: str = "", ref_type: str | None = None,
             ref_id: int | None = None, actor: Principal | None = None) -> int:
    """`post` for a key that cannot have been used yet (it names a row created in this transaction,
    e.g. `order:{new id}:reserve:{sku}`), in two Core statements: the conditional UPDATE of the
    account found by its owner (… RETURNING id, balance) and the INSERT of the entry. No replay
    check: a reused key still fails on the unique constraint. Returns the balance after. Falls back
    to `post` when the account does not exist yet or the balance is short (which then raises)."""
    if not idempotency_key or len(idempotency_key) > MAX_KEY_LENGTH:
        raise ValidationFailed("The idempotency key is missing or too long.", code="invalid_idempotency_key")
    if not isinstance(delta, int) or isinstance(delta, bool) or abs(delta) > MAX_AMOUNT:
        raise ValidationFailed("The amount is out of range.", code="invalid_amount")
    now = clock.now()
    # Plain Core on the session's connection (no ORM statement layer); what the session has pending
    # goes out first, so the account's row lock is still the last one taken.
    session.flush()
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        row = _post_new_pg(conn, merchant_id=merchant_id, kind=kind, owner_type=owner_type, owner_id=owner_id,
                           delta=delta, reason=reason, idempotency_key=idempotency_key, note=note,
                           ref_type=ref_type, ref_id=ref_id, actor=actor, now=now)
    else:
        accounts = LedgerAccount.__table__
        row = conn.execute(
            update(accounts)
            .where(accounts.c.merchant_id == merchant_id, accounts.c.kind == kind,
                   accounts.c.owner_type == owner_type, accounts.c.owner_id == owner_id,
                   accounts.c.balance + delta >= 0)
            .values(balance=accounts.c.balance + delta, updated_at=now)
            .returning(accounts.c.id, accounts.c.balance)
        ).first()
        if row is not None:
            conn.execute(insert(LedgerEntry.__table__).values(
                merchant_id=merchant_id, account_id=row[0], delta=delta, balance_after=row[1], reason=reason[:40],
                note=(note or "")[:500], idempotency_key=idempotency_key, ref_type=ref_type, ref_id=ref_id,
                actor_type=actor.kind if actor else "system", actor_id=actor.subject_id if actor else None,
                created_at=now))
    if row is None:  # no such account yet, or the balance is short: `post` opens it, or raises
        return post(session, merchant_id=merchant_id, kind=kind, owner_type=owner_type, owner_id=owner_id,
                    delta=delta, reason=reason, idempotency_key=idempotency_key, note=note, ref_type=ref_type,
                    ref_id=ref_id, actor=actor).balance_after
    account_id, new_balance = row
    _sync_loaded(session, account_id, new_balance, now)
    return int(new_balance)


# post_new on PostgreSQL in one statement: the conditional UPDATE of the account and the INSERT of the
# entry as a data-modifying CTE (no row back: no such account, or the balance is short). Compiled once.
_POST_NEW_PG = text("""
    WITH account AS (
        UPDATE ledger_accounts SET balance = balance + :delta, updated_at = :now
        WHERE merchant_id = :merchant_id AND kind = :kind AND owner_type = :owner_type AND owner_id = :owner_id
          AND balance + :delta >= 0
        RETURNING id, balance)
    INSERT INTO ledger_entries (merchant_id, account_id, delta, balance_after, reason, note, idempotency_key,
                                ref_type, ref_id, actor_type, actor_id, created_at)
    SELECT :merchant_id, account.id, :delta, account.balance, :reason, :note, :key, :ref_type, :ref_id,
           :actor_type, :actor_id, :now FROM account
    RETURNING account_id, balance_after""").bindparams(
    bindparam("now", type_=UTCDateTime()), bindparam("delta", type_=BigInteger()),
    bindparam("merchant_id", type_=BigInteger()), bindparam("owner_id", type_=BigInteger()),
    bindparam("ref_id", type_=BigInteger()), bindparam("actor_id", type_=BigInteger()),
    *(bindparam(name, type_=String()) for name in ("kind", "owner_type", "reason", "note", "key", "ref_type",
                                                    "actor_type")))


def _sync_loaded(session: Session, account_id: int, balance: int, now: Any) -> None:
    """An account already loaded in the session learns the balance a Core UPDATE gave it."""
    loaded = session.identity_map.get(identity_key(LedgerAccount, account_id))
    if loaded is not None:
        set_committed_value(loaded, "balance", balance)
        set_committed_value(loaded, "updated_at", now)


def _post_new_pg(conn: Any, *, merchant_id: int, kind: str, owner_type: str, owner_id: int, delta: int, reason: str,
                 idempotency_key: str, note: str, ref_type: str | None, ref_id: int | None, actor: Principal | None,
                 now: Any) -> Any:
    """(account id, balance after) from `_POST_NEW_PG`, or None when nothing was posted."""
    return conn.execute(_POST_NEW_PG, {
        "now": now, "delta": delta, "merchant_id": merchant_id, "kind": kind, "owner_type": owner_type,
        "owner_id": owner_id, "reason": reason[:40], "note": (note or "")[:500], "key": idempotency_key,
        "ref_type": ref_type, "ref_id": ref_id, "actor_type": actor.kind if actor else "system",
        "actor_id": actor.subject_id if actor else None}).first()


def open_accounts(session: Session, *, merchant_id: int, kind: str, owner_type: str, opening: Mapping[int, int],
                  reason: str, key_prefix: str, note: str = "", actor: Principal | None = None) -> dict[int, int]:
    """Open accounts for new owners in bulk with their opening balances (one entry per non-zero
    opening, keyed `{key_prefix}:{owner_id}`). For owners created in this transaction (new SKUs,
    a demo catalogue): two statements instead of a round trip per owner. Returns owner id ->
    account id."""
    if not opening:
        return {}
    if any(amount < 0 or amount > MAX_AMOUNT for amount in opening.values()):
        raise ValidationFailed("The amount is out of range.", code="invalid_amount")
    now = clock.now()
    owner_ids = list(opening)
    account_ids = list(session.scalars(
        insert(LedgerAccount).returning(LedgerAccount.id, sort_by_parameter_order=True),
        [{"merchant_id": merchant_id, "kind": kind, "owner_type": owner_type, "owner_id": oid,
          "balance": opening[oid], "created_at": now, "updated_at": now} for oid in owner_ids],
    ))
    by_owner = dict(zip(owner_ids, account_ids, strict=True))
    rows: list[dict[str, Any]] = [
        {"merchant_id": merchant_id, "account_id": by_owner[oid], "delta": opening[oid], "balance_after": opening[oid],
         "reason": reason[:40], "note": note[:500], "idempotency_key": f"{key_prefix}:{oid}", "ref_type": owner_type,
         "ref_id": oid, "actor_type": actor.kind if actor else "system", "actor_id": actor.subject_id if actor else None,
         "created_at": now}
        for oid in owner_ids if opening[oid]
    ]
    if rows:
        session.execute(insert(LedgerEntry), rows)
    return by_owner


def balance(session: Session, *, merchant_id: int, kind: str, owner_type: str, owner_id: int) -> int:
    return balances(session, merchant_id=merchant_id, kind=kind, owner_type=owner_type, owner_ids=[owner_id])[owner_id]


def balances(session: Session, *, merchant_id: int, kind: str, owner_type: str, owner_ids: Iterable[int]) -> dict[int, int]:
    """Balances of many owners in one query; an owner without an account has 0."""
    ids = list(dict.fromkeys(owner_ids))
    if not ids:
        return {}
    result = {i: 0 for i in ids}
    rows = session.execute(
        select(LedgerAccount.owner_id, LedgerAccount.balance).where(
            LedgerAccount.merchant_id == merchant_id, LedgerAccount.kind == kind,
            LedgerAccount.owner_type == owner_type, LedgerAccount.owner_id.in_(ids),
        )
    )
    for owner_id, bal in rows:
        result[owner_id] = bal
    return result


def balance_expression(*, merchant_id: Any, kind: str, owner_type: str, owner_id: Any) -> ColumnElement[int]:
    """A SQL expression for the balance of the owner in `owner_id` (a column of the caller's
    query), 0 without an account: lets another domain filter and sort by balance in one query
    without touching the ledger's tables itself."""
    sub = (
        select(LedgerAccount.balance)
        .where(LedgerAccount.merchant_id == merchant_id, LedgerAccount.kind == kind,
               LedgerAccount.owner_type == owner_type, LedgerAccount.owner_id == owner_id)
        .correlate_except(LedgerAccount)
        .scalar_subquery()
    )
    return func.coalesce(sub, 0)


def lock_account(session: Session, *, merchant_id: int, kind: str, owner_type: str, owner_id: int) -> LedgerAccount:
    """The account, opened if missing, its row locked until the transaction ends (PostgreSQL;
    SQLite serialises writers anyway). For "set to" changes computed from the current balance."""
    acct = account(session, merchant_id=merchant_id, kind=kind, owner_type=owner_type, owner_id=owner_id)
    assert acct is not None
    current = session.scalar(select(LedgerAccount.balance).where(LedgerAccount.id == acct.id).with_for_update())
    set_committed_value(acct, "balance", current)
    return acct


def entries(session: Session, *, merchant_id: int, kind: str, owner_type: str, owner_id: int,
            cursor: str | None = None, limit: int | None = None) -> Page[LedgerEntry]:
    """The entries of one account, newest first."""
    acct = account(session, merchant_id=merchant_id, kind=kind, owner_type=owner_type, owner_id=owner_id, create=False)
    if acct is None:
        return Page(items=[], next_cursor=None)
    stmt = select(LedgerEntry).where(LedgerEntry.merchant_id == merchant_id, LedgerEntry.account_id == acct.id)
    return paginate(session, stmt, LedgerEntry.id, cursor=cursor, limit=limit)


def entries_for_ref(session: Session, *, merchant_id: int, ref_type: str, ref_id: int) -> list[LedgerEntry]:
    return list(session.scalars(
        select(LedgerEntry).where(LedgerEntry.merchant_id == merchant_id, LedgerEntry.ref_type == ref_type,
                                  LedgerEntry.ref_id == ref_id).order_by(LedgerEntry.id)
    ))


def verify(session: Session, merchant_id: int, *, kind: str | None = None) -> list[Mismatch]:
    """Accounts whose balance differs from the sum of their entries (should always be none)."""
    sums = (
        select(LedgerEntry.account_id, func.sum(LedgerEntry.delta).label("total"))
        .where(LedgerEntry.merchant_id == merchant_id)
        .group_by(LedgerEntry.account_id)
        .subquery()
    )
    total = func.coalesce(sums.c.total, 0)
    stmt = (
        select(LedgerAccount, total)
        .outerjoin(sums, sums.c.account_id == LedgerAccount.id)
        .where(LedgerAccount.merchant_id == merchant_id, LedgerAccount.balance != total)
        .order_by(LedgerAccount.id)
    )
    if kind:
        stmt = stmt.where(LedgerAccount.kind == kind)
    return [Mismatch(account_id=a.id, kind=a.kind, owner_type=a.owner_type, owner_id=a.owner_id, balance=a.balance,
                     entries_sum=int(s)) for a, s in session.execute(stmt)]


def summary(session: Session, merchant_id: int) -> list[dict[str, Any]]:
    """Per kind: how many accounts and the total balance."""
    rows = session.execute(
        select(LedgerAccount.kind, func.count(), func.coalesce(func.sum(LedgerAccount.balance), 0))
        .where(LedgerAccount.merchant_id == merchant_id).group_by(LedgerAccount.kind).order_by(LedgerAccount.kind)
    )
    return [{"kind": k, "accounts": int(n), "total_balance": int(t)} for k, n, t in rows]
