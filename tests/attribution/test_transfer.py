"""Customer transfer: the manual tool (scope, permissions, history) and a leaver's departure transfer
(离职继承: colleague, store manager, round-robin, fall-backs), also through the staff disable API."""

from __future__ import annotations

import dataclasses

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.attribution.models.ownership import BindingHistory
from siyu.attribution.service import ownership, transfer
from siyu.core import clock
from siyu.core.auth import Role
from siyu.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from siyu.customers.models import Customer, CustomerTimeline
from tests.factories.customers import make_customer
from tests.factories.merchants import auth_headers, make_merchant, make_staff, make_store, principal_of


@dataclasses.dataclass
class Org:
    merchant: object
    store: object
    other_store: object
    admin: object
    manager: object
    leaver: object
    g2: object
    g3: object
    far_guide: object


def make_org(db: Session) -> Org:
    merchant = make_merchant(db)
    store, other = make_store(db, merchant=merchant), make_store(db, merchant=merchant)
    return Org(merchant=merchant, store=store, other_store=other,
               admin=make_staff(db, merchant=merchant, role=Role.BRAND_ADMIN),
               manager=make_staff(db, merchant=merchant, role=Role.STORE_MANAGER, store=store),
               leaver=make_staff(db, merchant=merchant, role=Role.GUIDE, store=store),
               g2=make_staff(db, merchant=merchant, role=Role.GUIDE, store=store),
               g3=make_staff(db, merchant=merchant, role=Role.GUIDE, store=store),
               far_guide=make_staff(db, merchant=merchant, role=Role.GUIDE, store=other))


def bind(db: Session, org: Org, guide: object, n: int) -> list[int]:
    """n customers bound to `guide` by a first touch."""
    ids = []
    for _ in range(n):
        c = make_customer(db, merchant=org.merchant)
        ownership.apply_touch(db, merchant_id=org.merchant.id, customer_id=c.id, touch_id=None, channel="guide_qr",
                              sharer_staff_id=guide.id, sharer_customer_id=None, at=clock.now())
        ids.append(c.id)
    return ids


def owners(db: Session, ids: list[int]) -> list[int | None]:
    db.expire_all()
    return [db.get(Customer, i).owner_id for i in ids]


def disable(db: Session, staff: object) -> None:
    staff.active = False  # type: ignore[attr-defined]
    db.flush()


def test_manual_transfer_moves_binding_owner_and_logs(db: Session) -> None:
    # given
    org = make_org(db)
    ids = bind(db, org, org.leaver, 3)
    actor = principal_of(db, org.manager)
    # when
    result = transfer.transfer_customers(db, actor=actor, customer_ids=ids[:2] + [ids[0]], to_guide_id=org.g2.id,
                                         reason="调岗")
    # then
    assert (result.moved, result.unchanged, result.not_found) == (2, 0, 0)
    assert owners(db, ids) == [org.g2.id, org.g2.id, org.leaver.id]
    b = ownership.guide_binding(db, merchant_id=org.merchant.id, customer_id=ids[0])
    assert (b.guide_id, b.store_id, b.touch_id) == (org.g2.id, org.store.id, None)
    lines = db.scalars(select(BindingHistory).where(BindingHistory.action == "transfer").order_by(BindingHistory.id)).all()
    assert [(h.customer_id, h.from_guide_id, h.to_guide_id, h.reason, h.actor_id, h.actor_name) for h in lines] == [
        (ids[0], org.leaver.id, org.g2.id, "调岗", org.manager.id, org.manager.name),
        (ids[1], org.leaver.id, org.g2.id, "调岗", org.manager.id, org.manager.name)]
    assert db.scalars(select(CustomerTimeline).where(CustomerTimeline.customer_id == ids[0],
                                                     CustomerTimeline.kind == "owner_changed")).all() != []
    # again: nothing moves twice
    again = transfer.transfer_customers(db, actor=actor, customer_ids=ids[:2], to_guide_id=org.g2.id)
    assert (again.moved, again.unchanged) == (0, 2)


def test_manual_transfer_refusals_change_nothing(db: Session) -> None:
    org = make_org(db)
    ids = bind(db, org, org.leaver, 2)
    far = bind(db, org, org.far_guide, 1)
    manager = principal_of(db, org.manager)
    history_before = len(db.scalars(select(BindingHistory)).all())
    # a guide may not transfer
    with pytest.raises(PermissionDenied):
        transfer.transfer_customers(db, actor=principal_of(db, org.g2), customer_ids=ids, to_guide_id=org.g3.id)
    # a target outside the manager's store, a disabled target, no customers
    for to, cids in ((org.far_guide.id, ids), (999_999, ids), (org.g2.id, [])):
        with pytest.raises(ValidationFailed):
            transfer.transfer_customers(db, actor=manager, customer_ids=cids, to_guide_id=to)
    disable(db, org.g3)
    with pytest.raises(ValidationFailed):
        transfer.transfer_customers(db, actor=manager, customer_ids=ids, to_guide_id=org.g3.id)
    # a customer outside the manager's store counts as not found and stays
    result = transfer.transfer_customers(db, actor=manager, customer_ids=far, to_guide_id=org.g2.id)
    assert (result.moved, result.not_found) == (0, 1)
    assert owners(db, ids + far) == [org.leaver.id, org.leaver.id, org.far_guide.id]
    assert len(db.scalars(select(BindingHistory)).all()) == history_before


def test_departure_round_robin_deals_in_id_order(db: Session) -> None:
    # given: the leaver has 5 customers (4 by binding, 1 only as owner set elsewhere)
    org = make_org(db)
    ids = bind(db, org, org.leaver, 4) + [make_customer(db, merchant=org.merchant, owner=org.leaver).id]
    disable(db, org.leaver)
    # when
    result = transfer.transfer_departed(db, merchant_id=org.merchant.id, staff_id=org.leaver.id, mode="round_robin")
    # then: g2, g3, g2, g3, g2 (the store's other active guides in id order; not the manager, not another store)
    assert result.moved == 5
    assert owners(db, ids) == [org.g2.id, org.g3.id, org.g2.id, org.g3.id, org.g2.id]
    assert all(ownership.guide_binding(db, merchant_id=org.merchant.id, customer_id=i).guide_id == o
               for i, o in zip(ids, owners(db, ids), strict=True))
    actions = {h.action for h in db.scalars(select(BindingHistory).where(BindingHistory.from_guide_id == org.leaver.id))}
    assert actions == {"departure"}
    # running it again moves nothing
    assert transfer.transfer_departed(db, merchant_id=org.merchant.id, staff_id=org.leaver.id).moved == 0


@pytest.mark.parametrize(("mode", "colleague", "disable_too", "expected"), [
    ("colleague", "far_guide", (), "far_guide"),
    ("manager", None, (), "manager"),
    ("colleague", "g2", ("g2",), "manager"),            # a colleague gone meanwhile → the store manager
    ("manager", None, ("manager",), "g2"),               # no manager → round-robin (g2, g3)
    ("round_robin", None, ("g2", "g3"), "manager"),      # no other guide → the manager
])
def test_departure_modes_and_fall_backs(db: Session, mode: str, colleague: str | None, disable_too: tuple[str, ...],
                                        expected: str) -> None:
    org = make_org(db)
    ids = bind(db, org, org.leaver, 1)
    for name in ("leaver", *disable_too):
        disable(db, getattr(org, name))
    result = transfer.transfer_departed(db, merchant_id=org.merchant.id, staff_id=org.leaver.id, mode=mode,
                                        colleague_id=getattr(org, colleague).id if colleague else None)
    assert result.moved == 1
    assert owners(db, ids) == [getattr(org, expected).id]


def test_departure_with_nobody_left_moves_nothing(db: Session) -> None:
    org = make_org(db)
    ids = bind(db, org, org.leaver, 2)
    for s in (org.leaver, org.manager, org.g2, org.g3):
        disable(db, s)
    result = transfer.transfer_departed(db, merchant_id=org.merchant.id, staff_id=org.leaver.id, mode="round_robin")
    assert result.moved == 0
    assert owners(db, ids) == [org.leaver.id, org.leaver.id]


def test_departure_refused_for_an_active_guide_or_bad_mode(db: Session) -> None:
    org = make_org(db)
    bind(db, org, org.leaver, 1)
    with pytest.raises(Conflict):
        transfer.transfer_departed(db, merchant_id=org.merchant.id, staff_id=org.leaver.id)
    with pytest.raises(ValidationFailed):
        transfer.transfer_departed(db, merchant_id=org.merchant.id, staff_id=org.leaver.id, mode="everyone")
    with pytest.raises(PermissionDenied):
        transfer.transfer_departed(db, merchant_id=org.merchant.id, staff_id=org.leaver.id,
                                   actor=principal_of(db, org.g2))
    with pytest.raises((NotFound, ValidationFailed)):
        transfer.transfer_departed(db, merchant_id=org.merchant.id, staff_id=10**9)


def test_disabling_a_guide_over_the_api_transfers_to_the_chosen_colleague(db: Session, client: TestClient) -> None:
    # given
    org = make_org(db)
    ids = bind(db, org, org.leaver, 3)
    headers = auth_headers(db, org.admin)
    # when: a refused choice first (an unknown colleague), then a good one
    bad = client.post(f"/api/v1/admin/staff/{org.leaver.id}/disable", headers=headers,
                      json={"transfer_mode": "colleague", "transfer_to_id": 999999})
    assert bad.status_code == 422
    assert owners(db, ids) == [org.leaver.id] * 3
    r = client.post(f"/api/v1/admin/staff/{org.leaver.id}/disable", headers=headers,
                    json={"transfer_mode": "colleague", "transfer_to_id": org.far_guide.id})
    # then
    assert r.status_code == 200, r.text
    assert owners(db, ids) == [org.far_guide.id] * 3
    lines = db.scalars(select(BindingHistory).where(BindingHistory.action == "departure")).all()
    assert {(h.from_guide_id, h.to_guide_id, h.actor_id) for h in lines} == {(org.leaver.id, org.far_guide.id,
                                                                              org.admin.id)}


def test_disabling_without_a_body_deals_round_robin(db: Session, client: TestClient) -> None:
    org = make_org(db)
    ids = bind(db, org, org.leaver, 2)
    r = client.post(f"/api/v1/admin/staff/{org.leaver.id}/disable", headers=auth_headers(db, org.manager))
    assert r.status_code == 200, r.text
    assert owners(db, ids) == [org.g2.id, org.g3.id]
