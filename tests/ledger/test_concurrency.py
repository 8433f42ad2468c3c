"""Real threads against a real, committed database: no oversell, no double posting."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from siyu.core.errors import Conflict
from siyu.ledger import service
from siyu.ledger.models import LedgerEntry
from siyu.merchants import service as merchants_service


def _run_threads(n: int, target) -> None:
    barrier = threading.Barrier(n)
    threads = [threading.Thread(target=target, args=(i, barrier)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)


def test_sixteen_threads_take_exactly_the_stock(committed_database):
    # given stock 50, committed
    database = committed_database
    with database.scope() as s:
        merchant_id = merchants_service.create_merchant(s, slug="race-shop", name="Race").id
        service.post(s, merchant_id=merchant_id, kind="stock", owner_type="sku", owner_id=1, delta=50,
                     reason="initial", idempotency_key="initial")
    ok, refused, errors = [], [], []
    lock = threading.Lock()

    # when 16 threads try 10 times each to take one
    def worker(i: int, barrier: threading.Barrier) -> None:
        barrier.wait()
        for attempt in range(10):
            try:
                with database.scope() as s:
                    service.post(s, merchant_id=merchant_id, kind="stock", owner_type="sku", owner_id=1, delta=-1,
                                 reason="order", idempotency_key=f"t{i}-{attempt}")
                with lock:
                    ok.append((i, attempt))
            except Conflict as exc:
                assert exc.code == "insufficient_balance"
                with lock:
                    refused.append((i, attempt))
            except Exception as exc:  # pragma: no cover - shows up in the assertion below
                with lock:
                    errors.append(repr(exc))

    _run_threads(16, worker)

    # then exactly 50 succeed, the balance is 0 and there are 50 take entries
    assert errors == []
    assert len(ok) == 50 and len(refused) == 110
    with database.scope() as s:
        assert service.balance(s, merchant_id=merchant_id, kind="stock", owner_type="sku", owner_id=1) == 0
        takes = s.scalar(select(func.count()).select_from(LedgerEntry).where(
            LedgerEntry.merchant_id == merchant_id, LedgerEntry.reason == "order"))
        assert takes == 50
        assert service.verify(s, merchant_id) == []


def test_racing_replays_of_one_key_move_once(committed_database):
    # given
    database = committed_database
    with database.scope() as s:
        merchant_id = merchants_service.create_merchant(s, slug="replay-shop", name="Replay").id
    results, lock = [], threading.Lock()

    # when 8 threads post the same key at once
    def worker(i: int, barrier: threading.Barrier) -> None:
        barrier.wait()
        try:
            with database.scope() as s:
                entry = service.post(s, merchant_id=merchant_id, kind="points", owner_type="customer", owner_id=9,
                                     delta=100, reason="earn", idempotency_key="order:1:earn")
                entry_id = entry.id
            with lock:
                results.append(entry_id)
        except Exception as exc:  # the racing duplicate fails on the unique constraint
            with lock:
                results.append(type(exc).__name__)

    _run_threads(8, worker)

    # then the balance moved once
    with database.scope() as s:
        assert service.balance(s, merchant_id=merchant_id, kind="points", owner_type="customer", owner_id=9) == 100
        assert s.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.merchant_id == merchant_id)) == 1
        assert service.verify(s, merchant_id) == []
    ids = {r for r in results if isinstance(r, int)}
    assert len(ids) == 1 and len(results) == 8
