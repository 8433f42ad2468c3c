"""Finding a pickup point: active points within a radius of the customer, nearest first.

The database narrows the candidates with a bounding box on the indexed latitude/longitude columns
(a range scan of `ix_groupbuy_leaders_geo`), and only those are measured exactly (haversine), so
the search stays fast with many thousands of points. The customer's last point is remembered."""

from __future__ import annotations

import dataclasses
import math

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.auth import Principal
from siyu.core.errors import Conflict, NotFound, field_error
from siyu.groupbuy.models import CustomerPoint, Leader
from siyu.groupbuy.service.common import MAX_RADIUS_M, get_row, groupbuy_settings, require_customer
from siyu.groupbuy.states import LeaderStatus

EARTH_RADIUS_M = 6_371_000.0
METRES_PER_DEGREE = math.pi * EARTH_RADIUS_M / 180.0


def haversine_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def bounding_box(lat: float, lng: float, radius_m: float) -> tuple[float, float, list[tuple[float, float]]]:
    """(min_lat, max_lat, longitude ranges) covering every point within `radius_m`. Near a pole the
    box spans all longitudes; across the antimeridian it is two ranges."""
    dlat = radius_m / METRES_PER_DEGREE
    min_lat, max_lat = lat - dlat, lat + dlat
    if min_lat <= -90 or max_lat >= 90:
        return max(min_lat, -90.0), min(max_lat, 90.0), [(-180.0, 180.0)]
    # The widest longitude span of the circle is at the latitude where it touches the box's
    # meridians: asin(sin(r/R) / cos(lat)).
    angular = radius_m / EARTH_RADIUS_M
    ratio = math.sin(angular) / math.cos(math.radians(lat))
    if ratio >= 1:
        return min_lat, max_lat, [(-180.0, 180.0)]
    dlng = math.degrees(math.asin(ratio)) * 1.0000001 + 1e-9
    lo, hi = lng - dlng, lng + dlng
    if lo < -180:
        return min_lat, max_lat, [(lo + 360, 180.0), (-180.0, hi)]
    if hi > 180:
        return min_lat, max_lat, [(lo, 180.0), (-180.0, hi - 360)]
    return min_lat, max_lat, [(lo, hi)]


@dataclasses.dataclass(frozen=True)
class NearbyPoint:
    leader: Leader
    distance_m: int


def _check_location(lat: float, lng: float) -> None:
    if not isinstance(lat, int | float) or lat != lat or not -90 <= lat <= 90:
        raise field_error("lat", "Enter a latitude between -90 and 90.")
    if not isinstance(lng, int | float) or lng != lng or not -180 <= lng <= 180:
        raise field_error("lng", "Enter a longitude between -180 and 180.")


def nearest_points(session: Session, *, merchant_id: int, lat: float, lng: float, radius_m: int | None = None,
                   limit: int = 20, leader_ids: list[int] | None = None, regions: list[str] | None = None) -> list[NearbyPoint]:
    """Active points within `radius_m` (default: the merchant's search radius) of (lat, lng), nearest
    first (ties by id). `leader_ids`/`regions` restrict to the points a wave serves."""
    _check_location(lat, lng)
    if radius_m is None:
        radius_m = groupbuy_settings(session, merchant_id).search_radius_m
    radius_m = max(1, min(int(radius_m), MAX_RADIUS_M))
    limit = max(1, min(limit, 100))
    min_lat, max_lat, lng_ranges = bounding_box(lat, lng, radius_m)
    cols = (Leader.id, Leader.latitude, Leader.longitude)
    candidates: list[tuple[int, float, float]] = []
    for lo, hi in lng_ranges:
        stmt = select(*cols).where(Leader.merchant_id == merchant_id, Leader.status == LeaderStatus.ACTIVE.value,
                                   Leader.latitude.between(min_lat, max_lat), Leader.longitude.between(lo, hi))
        if leader_ids or regions:
            conds = []
            if leader_ids:
                conds.append(Leader.id.in_(leader_ids))
            if regions:
                conds.append(Leader.region.in_(regions))
            stmt = stmt.where(or_(*conds))
        candidates.extend(session.execute(stmt).tuples())
    measured = sorted((d, lid) for lid, plat, plng in candidates
                      if (d := haversine_m(lat, lng, plat, plng)) <= radius_m)[:limit]
    if not measured:
        return []
    by_id = {row.id: row for row in session.scalars(select(Leader).where(Leader.id.in_([i for _, i in measured])))}
    return [NearbyPoint(leader=by_id[i], distance_m=int(round(d))) for d, i in measured]


def remember_point(session: Session, *, actor: Principal, leader_id: int) -> Leader:
    """The customer chose this point; it is offered first next time."""
    customer_id = require_customer(actor)
    try:
        leader = get_row(session, Leader, leader_id, merchant_id=actor.merchant_id)
    except NotFound as exc:
        raise field_error("leader_id", "Choose a pickup point from the list.") from exc
    if leader.status != LeaderStatus.ACTIVE:
        raise Conflict("This pickup point does not take orders now.", code="point_unavailable")
    row = session.scalars(select(CustomerPoint).where(CustomerPoint.merchant_id == actor.merchant_id,
                                                      CustomerPoint.customer_id == customer_id)).first()
    if row is None:
        session.add(CustomerPoint(merchant_id=actor.merchant_id, customer_id=customer_id, leader_id=leader.id,
                                  updated_at=clock.now()))
    else:
        row.leader_id = leader.id
        row.updated_at = clock.now()
    session.flush()
    return leader


def remembered_point(session: Session, *, merchant_id: int, customer_id: int) -> Leader | None:
    """The customer's last point, while it is still active."""
    row = session.execute(select(Leader).join(CustomerPoint, CustomerPoint.leader_id == Leader.id).where(
        CustomerPoint.merchant_id == merchant_id, CustomerPoint.customer_id == customer_id)).scalars().first()
    return row if row is not None and row.status == LeaderStatus.ACTIVE else None
