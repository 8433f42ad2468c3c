from __future__ import annotations

import datetime as dt
import threading

import pytest

from siyu.core import clock

T0 = dt.datetime(2026, 3, 1, 17, 30, tzinfo=dt.UTC)  # 2026-03-02 01:30 in Shanghai


def test_frozen_now_is_returned_in_utc_and_released_afterwards():
    shanghai_noon = dt.datetime(2026, 3, 1, 12, 0, tzinfo=clock.SHANGHAI)
    with clock.frozen(shanghai_noon):
        assert clock.now() == dt.datetime(2026, 3, 1, 4, 0, tzinfo=dt.UTC)
        assert clock.now().tzinfo == dt.UTC
    assert abs(clock.now() - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=5)


def test_frozen_nests_and_unwinds():
    later = T0 + dt.timedelta(hours=1)
    with clock.frozen(T0):
        with clock.frozen(later):
            assert clock.now() == later
        assert clock.now() == T0


def test_frozen_refuses_naive_datetimes():
    with pytest.raises(ValueError), clock.frozen(dt.datetime(2026, 1, 1)):
        pass


def test_frozen_time_is_seen_by_other_threads():
    seen = []
    with clock.frozen(T0):
        worker = threading.Thread(target=lambda: seen.append(clock.now()))
        worker.start()
        worker.join()
    assert seen == [T0]


def test_today_and_day_bounds_follow_shanghai():
    with clock.frozen(T0):
        assert clock.today_local() == dt.date(2026, 3, 2)
    start, end = clock.local_day_bounds(dt.date(2026, 3, 2))
    assert start == dt.datetime(2026, 3, 1, 16, 0, tzinfo=dt.UTC)
    assert end == dt.datetime(2026, 3, 2, 16, 0, tzinfo=dt.UTC)


def test_format_local_and_local():
    assert clock.format_local(T0) == "2026-03-02 01:30"
    assert clock.format_local(T0, "%H:%M") == "01:30"
    assert clock.format_local(None) == "—"
    assert clock.local(None) is None
    assert clock.local(T0).utcoffset() == dt.timedelta(hours=8)
