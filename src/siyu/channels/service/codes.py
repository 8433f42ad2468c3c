"""The official account's parametric QR codes (one permanent code per store and per guide) and
the guides' WeCom "contact me" states: what a callback's scene or state is traced back to."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.attribution.service import shares
from siyu.channels.models import OaQrCode, WecomContactWay
from siyu.channels.service import settings as channel_settings
from siyu.channels.service import wechat_api
from siyu.core.auth import Principal, Role, get_scoped, scoped, system_principal
from siyu.core.errors import Conflict, PermissionDenied, ValidationFailed, field_error
from siyu.merchants import service as merchants

QR_KINDS = ("store", "guide")
# The channel a touch through each kind of code records (attribution's words).
QR_CHANNELS = {"store": "store_qr", "guide": "guide_qr"}
STATE_RE = re.compile(r"^[A-Za-z0-9_\-]{1,30}$")
USERID_RE = re.compile(r"^[A-Za-z0-9_.@\-]{1,64}$")
# Staff who serve customers and so may have a guide code or a WeCom contact way.
SERVING_ROLES = (Role.GUIDE.value, Role.STORE_MANAGER.value)


def may_manage_codes_of(actor: Principal, staff_id: int | None) -> bool:
    """Managers of staff may manage anyone's code and contact way in their scope; a guide their own."""
    return actor.can("staff.manage") or (actor.is_staff and staff_id is not None and actor.staff_id == staff_id)


def _serving_staff(session: Session, staff_id: int, actor: Principal):
    if not may_manage_codes_of(actor, staff_id):
        raise PermissionDenied()
    staff = merchants.get_staff(session, staff_id, actor=actor)
    if staff.role not in SERVING_ROLES:
        raise field_error("staff_id", "Choose a guide or a store manager.")
    if not staff.active:
        raise field_error("staff_id", "This staff member is disabled.")
    return staff


# ---------------------------------------------------------------- official-account QR codes


def create_oa_qr(session: Session, *, actor: Principal, store_id: int | None = None,
                 staff_id: int | None = None) -> tuple[OaQrCode, bool]:
    """The store's or the guide's permanent QR code, created through the WeChat API on first ask
    (then answered from the table: a permanent code never changes). Returns (code, created). Store
    codes need `stores.manage`; guide codes `staff.manage`, or the guide themself."""
    if (store_id is None) == (staff_id is None):
        raise ValidationFailed("Choose a store or a guide.")
    if store_id is not None:
        actor.require("stores.manage")
        store = merchants.get_store(session, store_id, actor=actor)
        kind, target_key, label, code_store_id, code_staff_id = "store", f"store:{store.id}", store.name, store.id, None
    else:
        staff = _serving_staff(session, staff_id, actor)  # type: ignore[arg-type]
        kind, target_key, label, code_store_id, code_staff_id = "guide", f"guide:{staff.id}", staff.name, staff.store_id, staff.id
    existing = session.scalars(select(OaQrCode).where(OaQrCode.merchant_id == actor.merchant_id,
                                                      OaQrCode.target_key == target_key)).first()
    if existing is not None:
        return existing, False
    # The scene is the code of the store's (or the guide's) QR share: every scan is a touch of that share.
    if kind == "store":
        share = shares.store_qr_share(session, merchant_id=actor.merchant_id, store_id=code_store_id)
    else:
        share = shares.guide_qr_share(session, merchant_id=actor.merchant_id, staff_id=code_staff_id)
    config = channel_settings.oa_config(session, merchant_id=actor.merchant_id)
    answer = wechat_api.create_permanent_qrcode(session, merchant_id=actor.merchant_id, config=config,
                                                scene=share.code)
    code = OaQrCode(merchant_id=actor.merchant_id, kind=kind, store_id=code_store_id, staff_id=code_staff_id,
                    target_key=target_key, scene=share.code, share_code=share.code, ticket=answer["ticket"],
                    url=answer["url"], label=label[:100], created_by_id=actor.staff_id)
    try:
        with session.begin_nested():
            session.add(code)
            session.flush()
    except IntegrityError as exc:
        raced = session.scalars(select(OaQrCode).where(OaQrCode.merchant_id == actor.merchant_id,
                                                       OaQrCode.target_key == target_key)).first()
        if raced is None:
            raise Conflict() from exc
        return raced, False
    return code, True


def list_oa_qr(session: Session, *, actor: Principal) -> list[OaQrCode]:
    return list(session.scalars(scoped(select(OaQrCode), OaQrCode, actor).order_by(OaQrCode.kind.desc(), OaQrCode.id)))


def get_oa_qr(session: Session, code_id: int, *, actor: Principal) -> OaQrCode:
    return get_scoped(session, OaQrCode, code_id, actor)


def qr_by_scene(session: Session, *, merchant_id: int, scene: str) -> OaQrCode | None:
    if not scene or len(scene) > 64:
        return None
    return session.scalars(select(OaQrCode).where(OaQrCode.merchant_id == merchant_id, OaQrCode.scene == scene)).first()


# ---------------------------------------------------------------- WeCom contact ways


def set_contact_way(session: Session, *, actor: Principal, staff_id: int, wecom_userid: str, state: str = "",
                    config_id: str = "") -> WecomContactWay:
    """Record a guide's WeCom userid and the `state` of their "contact me" configuration (one per
    guide; saving again replaces it). A blank state gets `g<staff id>`. A guide may set their own."""
    staff = _serving_staff(session, staff_id, actor)
    wecom_userid = (wecom_userid or "").strip()
    state = (state or "").strip() or f"g{staff.id}"
    config_id = (config_id or "").strip()
    errors = {}
    if not USERID_RE.match(wecom_userid):
        errors["wecom_userid"] = "Use up to 64 letters, digits and . _ @ -."
    if not STATE_RE.match(state):
        errors["state"] = "Use up to 30 letters, digits, _ and -."
    if len(config_id) > 64:
        errors["config_id"] = "Use at most 64 characters."
    if errors:
        field, message = next(iter(errors.items()))
        raise field_error(field, message)
    taken = session.scalars(select(WecomContactWay).where(
        WecomContactWay.merchant_id == actor.merchant_id, WecomContactWay.state == state,
        WecomContactWay.staff_id != staff.id)).first()
    if taken is not None:
        raise field_error("state", "Another guide already uses this state.")
    way = session.scalars(select(WecomContactWay).where(WecomContactWay.merchant_id == actor.merchant_id,
                                                        WecomContactWay.staff_id == staff.id)).first()
    if way is None:
        way = WecomContactWay(merchant_id=actor.merchant_id, staff_id=staff.id, created_by_id=actor.staff_id)
        session.add(way)
    way.store_id, way.wecom_userid, way.state, way.config_id, way.active = staff.store_id, wecom_userid, state, config_id, True
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise field_error("state", "Another guide already uses this state.") from exc
    return way


def list_contact_ways(session: Session, *, actor: Principal) -> list[WecomContactWay]:
    return list(session.scalars(scoped(select(WecomContactWay), WecomContactWay, actor).order_by(WecomContactWay.id)))


def contact_way_for(session: Session, *, merchant_id: int, state: str, wecom_userid: str) -> WecomContactWay | None:
    """The contact way a WeCom callback names: by its state first, else by the guide's userid."""
    stmt = scoped(select(WecomContactWay), WecomContactWay, system_principal(merchant_id)).where(
        WecomContactWay.active.is_(True))
    if state:
        found = session.scalars(stmt.where(WecomContactWay.state == state[:30])).first()
        if found is not None:
            return found
    if wecom_userid:
        return session.scalars(stmt.where(WecomContactWay.wecom_userid == wecom_userid[:64])
                               .order_by(WecomContactWay.id)).first()
    return None


def count_codes(session: Session, *, actor: Principal) -> int:
    return int(session.scalar(scoped(select(func.count(OaQrCode.id)), OaQrCode, actor)) or 0)
