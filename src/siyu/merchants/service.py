"""Merchants, their org tree and staff; staff authentication, sessions and API tokens."""

from __future__ import annotations

import datetime as dt
import math
import re
import secrets
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from siyu.config import get_settings
from siyu.core import clock
from siyu.core.auth import (
    Principal,
    Role,
    get_scoped,
    hash_password,
    new_token,
    scoped,
    token_digest,
    verify_password,
)
from siyu.core.errors import Conflict, NotFound, PermissionDenied, Unauthorized, field_error
from siyu.core.events import emit
from siyu.merchants.models import Agent, Merchant, Staff, StaffToken, Store

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9\-]{1,38}[a-z0-9]$")

# A hash to verify against when the username is unknown, so a login takes as long either way.
_dummy_hash: str | None = None


# ---------------------------------------------------------------- merchants


def create_merchant(session: Session, *, slug: str, name: str, settings: dict[str, Any] | None = None) -> Merchant:
    if not SLUG_RE.match(slug):
        raise field_error("slug", "Use 3–40 lowercase letters, digits and dashes.")
    if session.scalar(select(Merchant.id).where(Merchant.slug == slug)):
        raise Conflict("A merchant with this slug already exists.", code="slug_taken")
    merchant = Merchant(slug=slug, name=name, settings=settings or {})
    session.add(merchant)
    session.flush()
    return merchant


def get_merchant(session: Session, merchant_id: int) -> Merchant:
    merchant = session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound()
    return merchant


def get_merchant_by_slug(session: Session, slug: str) -> Merchant:
    if not isinstance(slug, str) or len(slug) > 40:
        raise NotFound("No such shop.", code="merchant_not_found")
    merchant = session.scalars(select(Merchant).where(Merchant.slug == slug)).first()
    if merchant is None:
        raise NotFound("No such shop.", code="merchant_not_found")
    return merchant


def update_merchant(session: Session, *, actor: Principal, name: str | None = None, settings: dict[str, Any] | None = None) -> Merchant:
    actor.require("merchant.manage")
    merchant = get_merchant(session, actor.merchant_id)
    if name is not None:
        merchant.name = name
    if settings is not None:
        merchant.settings = {**(merchant.settings or {}), **settings}
    session.flush()
    return merchant


DEFAULT_PROTECTION_DAYS = 30
# Settings that are written but never shown back (only whether they are set).
SECRET_SETTINGS = frozenset({"wechat_miniprogram_secret", "wechat_oa_secret", "wechat_oa_token", "wechat_oa_aes_key",
                             "wecom_token", "wecom_aes_key"})


def public_settings(merchant: Merchant) -> dict[str, Any]:
    """The merchant's editable settings as the console and the API show them: secrets only as set or not."""
    settings = merchant.settings or {}
    return {
        "wechat_miniprogram_appid": settings.get("wechat_miniprogram_appid", ""),
        "wechat_miniprogram_secret_set": bool(settings.get("wechat_miniprogram_secret")),
        "protection_days": int(settings.get("protection_days", DEFAULT_PROTECTION_DAYS)),
    }


def merchant_setting(session: Session, merchant_id: int, key: str, default: Any) -> Any:
    """A merchant's setting (order expiry, after-sales window …) or the platform default."""
    merchant = get_merchant(session, merchant_id)
    return (merchant.settings or {}).get(key, default)


# ---------------------------------------------------------------- agents and stores


def create_agent(session: Session, *, actor: Principal, name: str, region: str = "") -> Agent:
    actor.require("merchant.manage")
    if session.scalar(select(Agent.id).where(Agent.merchant_id == actor.merchant_id, Agent.name == name)):
        raise field_error("name", "An agent with this name already exists.")
    agent = Agent(merchant_id=actor.merchant_id, name=name, region=region)
    session.add(agent)
    session.flush()
    return agent


def list_agents(session: Session, *, actor: Principal) -> list[Agent]:
    stmt = select(Agent).where(Agent.merchant_id == actor.merchant_id)
    if actor.role == Role.AGENT_ADMIN:
        stmt = stmt.where(Agent.id == actor.agent_id)
    elif actor.kind == "staff" and actor.role != Role.BRAND_ADMIN:
        return []
    return list(session.scalars(stmt.order_by(Agent.id)))


def get_agent(session: Session, agent_id: int, *, actor: Principal) -> Agent:
    agent = session.get(Agent, agent_id) if isinstance(agent_id, int) and 0 < agent_id < 2**62 else None
    if agent is None or agent.merchant_id != actor.merchant_id:
        raise NotFound()
    if actor.role == Role.AGENT_ADMIN and agent.id != actor.agent_id:
        raise NotFound()
    return agent


def create_store(session: Session, *, actor: Principal, name: str, address: str = "", latitude: float | None = None,
                 longitude: float | None = None, opening_hours: str = "", phone: str = "",
                 agent_id: int | None = None) -> Store:
    actor.require("stores.manage")
    if actor.role == Role.AGENT_ADMIN:
        agent_id = actor.agent_id
    if agent_id is not None:
        get_agent(session, agent_id, actor=actor)
    _check_store_name(session, actor.merchant_id, name)
    store = Store(merchant_id=actor.merchant_id, agent_id=agent_id, name=name, address=address,
                  latitude=latitude, longitude=longitude, opening_hours=opening_hours, phone=phone)
    session.add(store)
    session.flush()
    return store


def _check_store_name(session: Session, merchant_id: int, name: str, exclude_id: int | None = None) -> None:
    stmt = select(Store.id).where(Store.merchant_id == merchant_id, Store.name == name)
    if exclude_id:
        stmt = stmt.where(Store.id != exclude_id)
    if session.scalar(stmt):
        raise field_error("name", "A store with this name already exists.")


def update_store(session: Session, store_id: int, *, actor: Principal, **changes: Any) -> Store:
    actor.require("stores.manage")
    store = get_store(session, store_id, actor=actor)
    if "name" in changes and changes["name"] is not None:
        _check_store_name(session, actor.merchant_id, changes["name"], exclude_id=store.id)
    if changes.get("agent_id") is not None:
        if actor.role != Role.BRAND_ADMIN:
            raise PermissionDenied()
        get_agent(session, changes["agent_id"], actor=actor)
    for key in ("name", "address", "latitude", "longitude", "opening_hours", "phone", "agent_id", "active"):
        if key in changes and changes[key] is not None:
            setattr(store, key, changes[key])
    session.flush()
    return store


def get_store(session: Session, store_id: int, *, actor: Principal) -> Store:
    return get_scoped(session, Store, store_id, actor)


def list_stores(session: Session, *, actor: Principal, active_only: bool = False) -> list[Store]:
    stmt = scoped(select(Store), Store, actor)
    if active_only:
        stmt = stmt.where(Store.active.is_(True))
    return list(session.scalars(stmt.order_by(Store.id)))


def store_ids_of_agent(session: Session, merchant_id: int, agent_id: int) -> list[int]:
    return list(session.scalars(select(Store.id).where(Store.merchant_id == merchant_id, Store.agent_id == agent_id)))


def haversine_m(lat1: float, lng1: float, lat2: float, lng2: float) -> int:
    """Great-circle distance in whole metres."""
    r = 6_371_000.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return int(round(2 * r * math.asin(math.sqrt(a))))


def stores_for_shop(session: Session, *, merchant_id: int, lat: float | None = None, lng: float | None = None) -> list[tuple[Store, int | None]]:
    """Active stores for customers; nearest first when a location is given."""
    stores = list(session.scalars(
        select(Store).where(Store.merchant_id == merchant_id, Store.active.is_(True)).order_by(Store.id)
    ))
    if lat is None or lng is None:
        return [(s, None) for s in stores]
    with_distance = [
        (s, haversine_m(lat, lng, s.latitude, s.longitude) if s.latitude is not None and s.longitude is not None else None)
        for s in stores
    ]
    return sorted(with_distance, key=lambda p: (p[1] is None, p[1] or 0, p[0].id))


# ---------------------------------------------------------------- staff


def _check_attachment(session: Session, actor: Principal, role: Role, store_id: int | None, agent_id: int | None) -> tuple[int | None, int | None]:
    """Guides and store managers belong to a store, agent admins to an agent; the actor can only
    attach staff inside their own scope and never above their own role."""
    if role in (Role.GUIDE, Role.STORE_MANAGER):
        if store_id is None:
            raise field_error("store_id", "Choose the store this person works in.")
        store = get_store(session, store_id, actor=actor)
        return store.id, store.agent_id
    if role == Role.AGENT_ADMIN:
        if agent_id is None:
            raise field_error("agent_id", "Choose the agent this person belongs to.")
        agent = get_agent(session, agent_id, actor=actor)
        return None, agent.id
    return None, None


_RANK = {Role.BRAND_ADMIN: 4, Role.AGENT_ADMIN: 3, Role.STORE_MANAGER: 2, Role.GUIDE: 1}


def _check_can_manage_role(actor: Principal, role: Role) -> None:
    actor.require("staff.manage")
    if actor.kind == "system" or actor.role == Role.BRAND_ADMIN:
        return
    if _RANK[role] >= _RANK[Role(actor.role)]:
        raise PermissionDenied("You can only manage staff below your own role.")


def create_staff(session: Session, *, actor: Principal, username: str, password: str, name: str, role: Role | str,
                 phone: str = "", store_id: int | None = None, agent_id: int | None = None,
                 password_hash: str | None = None) -> Staff:
    role = Role(role)
    _check_can_manage_role(actor, role)
    store_id, agent_id = _check_attachment(session, actor, role, store_id, agent_id)
    if session.scalar(select(Staff.id).where(Staff.username == username)):
        raise field_error("username", "This username is taken.")
    staff = Staff(merchant_id=actor.merchant_id, username=username, name=name, role=role.value, phone=phone,
                  store_id=store_id, agent_id=agent_id,
                  password_hash=password_hash or hash_password(password))
    session.add(staff)
    session.flush()
    return staff


def get_staff(session: Session, staff_id: int, *, actor: Principal) -> Staff:
    return get_scoped(session, Staff, staff_id, actor)


def list_staff(session: Session, *, actor: Principal, role: str | None = None, store_id: int | None = None,
               active: bool | None = None) -> list[Staff]:
    stmt = scoped(select(Staff), Staff, actor)
    if role:
        stmt = stmt.where(Staff.role == role)
    if store_id:
        stmt = stmt.where(Staff.store_id == store_id)
    if active is not None:
        stmt = stmt.where(Staff.active.is_(active))
    return list(session.scalars(stmt.order_by(Staff.id)))


def staff_names(session: Session, merchant_id: int, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(select(Staff.id, Staff.name).where(Staff.merchant_id == merchant_id, Staff.id.in_(set(ids))))
    return {i: n for i, n in rows}


def update_staff(session: Session, staff_id: int, *, actor: Principal, name: str | None = None, phone: str | None = None,
                 password: str | None = None, store_id: int | None = None) -> Staff:
    staff = get_staff(session, staff_id, actor=actor)
    if staff.id != actor.staff_id:
        _check_can_manage_role(actor, Role(staff.role))
    if name is not None:
        staff.name = name
    if phone is not None:
        staff.phone = phone
    if password is not None:
        staff.password_hash = hash_password(password)
        # A new password ends every other session of that person.
        revoke_tokens(session, staff_id=staff.id)
    if store_id is not None and store_id != staff.store_id:
        if Role(staff.role) not in (Role.GUIDE, Role.STORE_MANAGER):
            raise field_error("store_id", "Only guides and store managers belong to a store.")
        _check_can_manage_role(actor, Role(staff.role))
        store = get_store(session, store_id, actor=actor)
        staff.store_id, staff.agent_id = store.id, store.agent_id
    session.flush()
    return staff


# Where a leaver's customers go (离职继承): the attribution domain moves them on `staff.disabled`.
TRANSFER_MODES = ("round_robin", "manager", "colleague")


def disable_staff(session: Session, staff_id: int, *, actor: Principal, transfer_mode: str = "round_robin",
                  transfer_to_id: int | None = None) -> Staff:
    """Disable a staff member: they can no longer sign in and every session and token they hold is
    revoked at once. Their customers are transferred by the attribution domain (离职继承) as chosen:
    round-robin across the store's other guides, to the store manager, or to one colleague."""
    staff = get_staff(session, staff_id, actor=actor)
    if staff.id == actor.staff_id:
        raise Conflict("You cannot disable yourself.", code="cannot_disable_self")
    _check_can_manage_role(actor, Role(staff.role))
    if transfer_mode not in TRANSFER_MODES:
        raise field_error("transfer_mode", "Choose one of the options.")
    if transfer_mode == "colleague":
        try:
            colleague = get_scoped(session, Staff, transfer_to_id, actor) if transfer_to_id else None
        except NotFound:
            colleague = None
        if colleague is None or not colleague.active or colleague.id == staff.id:
            raise field_error("transfer_to_id", "Choose an active colleague.")
    if staff.active:
        staff.active = False
        staff.disabled_at = clock.now()
        revoke_tokens(session, staff_id=staff.id)
        emit(session, "staff.disabled", {"staff_id": staff.id, "store_id": staff.store_id, "role": staff.role,
                                         "transfer_mode": transfer_mode,
                                         "transfer_to_id": transfer_to_id if transfer_mode == "colleague" else None,
                                         "by_staff_id": actor.staff_id},
             merchant_id=staff.merchant_id)
    session.flush()
    return staff


def enable_staff(session: Session, staff_id: int, *, actor: Principal) -> Staff:
    staff = get_staff(session, staff_id, actor=actor)
    _check_can_manage_role(actor, Role(staff.role))
    staff.active = True
    staff.disabled_at = None
    session.flush()
    return staff


# ---------------------------------------------------------------- authentication


def authenticate(session: Session, *, username: str, password: str) -> Staff:
    """The active staff member with this username and password, else Unauthorized (the same
    answer for an unknown user, a wrong password and a disabled account)."""
    global _dummy_hash
    staff = session.scalars(select(Staff).where(Staff.username == username)).first()
    if staff is None:
        if _dummy_hash is None:
            _dummy_hash = hash_password(secrets.token_hex(8))
        verify_password(_dummy_hash, password)
        raise Unauthorized("Wrong username or password.", code="invalid_credentials")
    if not verify_password(staff.password_hash, password) or not staff.active:
        raise Unauthorized("Wrong username or password.", code="invalid_credentials")
    return staff


def issue_token(session: Session, staff: Staff, *, kind: str = "session", label: str = "") -> tuple[str, StaffToken]:
    """A new console session or API token; returns the raw token (shown once) and its row."""
    settings = get_settings()
    days = settings.session_days if kind == "session" else settings.token_days
    if kind == "api" and label:
        days = 365
    raw = new_token()
    row = StaffToken(merchant_id=staff.merchant_id, staff_id=staff.id, kind=kind, token_digest=token_digest(raw),
                     csrf_token=secrets.token_urlsafe(24), label=label,
                     expires_at=clock.now() + dt.timedelta(days=days))
    session.add(row)
    session.flush()
    return raw, row


def principal_for(session: Session, staff: Staff) -> Principal:
    role = Role(staff.role)
    store_ids: tuple[int, ...] = ()
    if role == Role.AGENT_ADMIN and staff.agent_id:
        store_ids = tuple(store_ids_of_agent(session, staff.merchant_id, staff.agent_id))
    elif role in (Role.STORE_MANAGER, Role.GUIDE) and staff.store_id:
        store_ids = (staff.store_id,)
    return Principal(merchant_id=staff.merchant_id, kind="staff", subject_id=staff.id, role=role,
                     store_ids=store_ids, agent_id=staff.agent_id, name=staff.name)


def resolve_token(session: Session, raw: str, *, kind: str | None = None) -> tuple[Principal, StaffToken]:
    """The principal behind a session cookie or bearer token, else Unauthorized."""
    if not raw or len(raw) > 200:
        raise Unauthorized()
    row = session.scalars(select(StaffToken).where(StaffToken.token_digest == token_digest(raw))).first()
    if row is None or row.revoked_at is not None or row.expires_at <= clock.now() or (kind and row.kind != kind):
        raise Unauthorized()
    staff = session.get(Staff, row.staff_id)
    if staff is None or not staff.active:
        raise Unauthorized()
    return principal_for(session, staff), row


def revoke_token(session: Session, raw: str) -> None:
    session.execute(update(StaffToken).where(StaffToken.token_digest == token_digest(raw), StaffToken.revoked_at.is_(None))
                    .values(revoked_at=clock.now()))


def revoke_tokens(session: Session, *, staff_id: int) -> int:
    result = session.execute(update(StaffToken).where(StaffToken.staff_id == staff_id, StaffToken.revoked_at.is_(None))
                             .values(revoked_at=clock.now()))
    return result.rowcount or 0


def list_api_tokens(session: Session, *, actor: Principal) -> list[StaffToken]:
    return list(session.scalars(select(StaffToken).where(
        StaffToken.staff_id == actor.staff_id, StaffToken.kind == "api", StaffToken.revoked_at.is_(None),
    ).order_by(StaffToken.id.desc())))


def revoke_api_token(session: Session, token_id: int, *, actor: Principal) -> None:
    row = session.get(StaffToken, token_id) if 0 < token_id < 2**62 else None
    if row is None or row.staff_id != actor.staff_id or row.kind != "api":
        raise NotFound()
    row.revoked_at = row.revoked_at or clock.now()
    session.flush()


def count_staff(session: Session, merchant_id: int) -> int:
    return session.scalar(select(func.count()).select_from(Staff).where(Staff.merchant_id == merchant_id)) or 0
