"""The nearest-point search agrees with brute force (every point measured), including near the
antimeridian and the poles, and leaves out points that are not active."""

from __future__ import annotations

import math
import random

import pytest
from sqlalchemy import insert
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.groupbuy.models import Leader
from siyu.groupbuy.service import points
from siyu.merchants.models import Merchant
from tests.factories.customers import make_customer


def _scatter(db: Session, merchant: Merchant, rng: random.Random, centre: tuple[float, float], spread: float,
             n: int) -> list[tuple[int, float, float, str]]:
    customers = [make_customer(db, merchant=merchant) for _ in range(n)]
    rows = []
    for i, customer in enumerate(customers):
        lat = max(-90.0, min(90.0, centre[0] + rng.uniform(-spread, spread)))
        lng = centre[1] + rng.uniform(-spread, spread)
        lng = (lng + 180) % 360 - 180
        status = "active" if i % 7 else rng.choice(["frozen", "closed", "applied"])
        rows.append({"merchant_id": merchant.id, "customer_id": customer.id, "status": status, "name": f"团长{i}",
                     "phone": "13900000000", "point_name": f"点{i}", "address": "地址", "latitude": lat,
                     "longitude": lng, "applied_at": clock.now()})
    db.execute(insert(Leader), rows)
    db.flush()
    return [(leader.id, leader.latitude, leader.longitude, leader.status)
            for leader in db.query(Leader).filter(Leader.merchant_id == merchant.id)]


def _brute(all_points, lat: float, lng: float, radius: int, limit: int) -> list[int]:
    found = sorted((points.haversine_m(lat, lng, plat, plng), pid) for pid, plat, plng, status in all_points
                   if status == "active" and points.haversine_m(lat, lng, plat, plng) <= radius)
    return [pid for _, pid in found[:limit]]


@pytest.mark.parametrize("centre,spread", [((31.23, 121.47), 0.2), ((0.0, 179.95), 0.2), ((89.9, 10.0), 0.3),
                                           ((-33.86, -179.99), 0.1)])
def test_nearest_matches_brute_force(db: Session, merchant: Merchant, centre, spread) -> None:
    rng = random.Random(hash(centre) & 0xFFFF)
    all_points = _scatter(db, merchant, rng, centre, spread, 300)
    for _ in range(40):
        lat = max(-90.0, min(90.0, centre[0] + rng.uniform(-spread, spread)))
        lng = ((centre[1] + rng.uniform(-spread, spread)) + 180) % 360 - 180
        radius = rng.choice([500, 2000, 5000, 15000, 40000])
        got = points.nearest_points(db, merchant_id=merchant.id, lat=lat, lng=lng, radius_m=radius, limit=25)
        assert [p.leader.id for p in got] == _brute(all_points, lat, lng, radius, 25)
        assert all(p.distance_m <= radius and p.leader.status == "active" for p in got)


def test_bounding_box_contains_the_circle() -> None:
    rng = random.Random(3)
    for _ in range(2000):
        lat, lng = rng.uniform(-89, 89), rng.uniform(-180, 180)
        radius = rng.choice([100, 1000, 10_000, 50_000])
        min_lat, max_lat, ranges = points.bounding_box(lat, lng, radius)
        # points on the circle, every 10 degrees of bearing, fall inside the box
        for bearing in range(0, 360, 10):
            d = radius / points.EARTH_RADIUS_M * 0.999
            b = math.radians(bearing)
            p1 = math.radians(lat)
            p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
            l2 = math.radians(lng) + math.atan2(math.sin(b) * math.sin(d) * math.cos(p1),
                                                math.cos(d) - math.sin(p1) * math.sin(p2))
            plat, plng = math.degrees(p2), (math.degrees(l2) + 540) % 360 - 180
            assert min_lat <= plat <= max_lat
            assert any(lo <= plng <= hi for lo, hi in ranges)
