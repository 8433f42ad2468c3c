"""The group-buying domain's business rules, one module per use case:
`from siyu.groupbuy import service` then `service.leaders.apply(...)`, `service.waves.create_wave(...)` …

Importing this package registers the wave pricing contributor with the orders checkout, and the
wave's share-link target with attribution (when attribution offers `register_target`)."""

from siyu.core.clock import format_local
from siyu.groupbuy.service import (  # noqa: F401  (the checkout contributor registers itself)
    checkout,
    commissions,
    common,
    community,
    cutoff,
    delivery,
    leaders,
    notifications,
    points,
    sync,
    waves,
)


def _register_share_target() -> None:
    try:
        from siyu.attribution.service import shares
    except ImportError:  # attribution not built yet
        return
    register = getattr(shares, "register_target", None)
    info = getattr(shares, "TargetInfo", None)
    if register is None or info is None:
        return

    def describe(session, merchant_id: int, target_id: int):  # type: ignore[no-untyped-def]
        wave = waves.get_wave(session, target_id, merchant_id=merchant_id)
        items = waves.items_of(session, wave.id)
        return info(title=wave.title, image_url=next((i.image_url for i in items if i.image_url), None),
                    price_cents=min((i.price_cents for i in items), default=None),
                    subtitle=f"截单 {format_local(wave.cutoff_at)}")

    register("wave", lambda slug, target_id: f"/shop/{slug}/wave/{target_id}", describe=describe)


def share_link(session, *, merchant_id: int, wave_id: int, leader_customer_id: int) -> str | None:  # type: ignore[no-untyped-def]
    """The leader's own share code for a wave (attribution's share link, so buyers who come through it
    are attributed to the leader), or None while attribution offers no shares."""
    try:
        from siyu.attribution.service import shares
    except ImportError:
        return None
    make = getattr(shares, "get_or_create_share", None)
    if make is None or "wave" not in getattr(shares, "registered_targets", lambda: ())():
        return None
    return make(session, merchant_id=merchant_id, target_type="wave", target_id=wave_id, channel="community",
                sharer_customer_id=leader_customer_id).code


_register_share_target()
