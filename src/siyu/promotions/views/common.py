"""promotions: what the campaign pages of several areas share (team buys, bargains, ladders).

The console page frame (labels, the `?ok=` flash, the merchant), datetime-local fields, whole-number
fields, the SKU choices of a builder, saving a builder form (create or update, field errors shown
again), and the status actions (schedule / pause / resume / end …) with their redirect.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from siyu.catalog import service as catalog
from siyu.core import clock
from siyu.core.auth import Principal
from siyu.core.errors import AppError, NotFound
from siyu.core.i18n import gettext as _
from siyu.core.templating import render
from siyu.merchants import service as merchants


def console_page(request: Request, session: Any, principal: Principal, name: str, ctx: dict[str, Any], *,
                 labels: Mapping[str, Any], flashes: Mapping[str, str], status_of: Callable[..., Any],
                 extra: Mapping[str, Any] | None = None, status: int = 200) -> Response:
    """A console page of an area: `promotions/{name}` with the labels, the flash of `?ok=` and the merchant."""
    key = request.query_params.get("ok", "")
    merchant = merchants.get_merchant(session, principal.merchant_id)
    base = {"active_menu": "promotions", "labels": labels, **(extra or {}),
            "flash": _(flashes[key]) if key in flashes else None, "now": clock.now(), "status_of": status_of,
            "merchant_name": merchant.name, "merchant_slug": merchant.slug}
    return render(request, f"promotions/{name}", {**base, **ctx}, status_code=status)


def local_input(value: dt.datetime | None) -> str:
    """A datetime as the value of a datetime-local field (Asia/Shanghai)."""
    return clock.format_local(value, "%Y-%m-%dT%H:%M") if value else ""


def local_dt(raw: str) -> dt.datetime:
    """A datetime-local field (Asia/Shanghai) as UTC; ValueError when it is not one."""
    return dt.datetime.fromisoformat(raw.strip()[:19]).replace(tzinfo=clock.SHANGHAI).astimezone(dt.UTC)


def parse_int(raw: str, *, default: int | None = None) -> int:
    """A whole number of at most 9 digits; an empty field is `default` when one is given, else ValueError."""
    raw = raw.strip()
    if not raw and default is not None:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
        raise ValueError(raw)
    return int(raw)


def sku_choices(session: Any, principal: Principal) -> list[dict[str, Any]]:
    """The SKUs on sale a campaign builder offers: id, title with the spec, price."""
    products = catalog.list_products(session, actor=principal, status="on_sale", limit=100).items
    return [{"sku_id": s.id, "title": f"{v.title} {s.spec_text}".strip(), "price_cents": s.price_cents}
            for v in catalog.product_views(session, merchant_id=principal.merchant_id, products=products,
                                           active_skus_only=True) for s in v.skus]


def save_campaign(session: Any, *, base: str, data: Any, campaign: Any, create: Callable[..., Any],
                  update: Callable[..., Any], actor: Principal,
                  field_key: Callable[[str], str] = lambda k: k) -> tuple[Response | None, dict[str, str]]:
    """Create (campaign None) or update the campaign from a parsed builder form: the redirect to its detail,
    or (None, errors) for a 409/422 (the service's field errors, keys mapped by `field_key`, else the message)."""
    try:
        with session.begin_nested():
            if campaign is None:
                campaign = create(session, actor=actor, data=data)
            else:
                campaign = update(session, campaign.id, actor=actor, data=data)
        return RedirectResponse(f"{base}/{campaign.id}?ok=saved", status_code=303), {}
    except AppError as exc:
        if exc.status_code not in (409, 422):
            raise
        fields = exc.details.get("fields") if isinstance(exc.details, dict) else None
        return None, {field_key(k): v for k, v in (fields or {}).items()} or {"form": exc.translated()}


def status_action(session: Any, *, base: str, campaign_id: int, action: str, actions: tuple[str, ...],
                  change: Callable[[], Any], nested: bool = True) -> Response:
    """A status action posted from a campaign's detail: 404 for an unknown action; a 409 comes back as
    `?error=`, success as `?ok={action}`."""
    if action not in actions:
        raise NotFound()
    try:
        if nested:
            with session.begin_nested():
                change()
        else:
            change()
    except AppError as exc:
        if exc.status_code != 409:
            raise
        return RedirectResponse(f"{base}/{campaign_id}?error={quote(exc.translated())}", status_code=303)
    return RedirectResponse(f"{base}/{campaign_id}?ok={action}", status_code=303)
