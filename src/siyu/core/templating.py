"""The Jinja2 environment for the console and the H5 shop: translations, money and time filters,
the console menu, and the CSRF token."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from markupsafe import Markup, escape

from siyu.core import clock, i18n, money
from siyu.core.privacy import mask_phone

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "web" / "templates"

# The console menu (UI.md). Each capability adds its entry here when it lands: (key, label, path,
# permission or None).
CONSOLE_MENU: list[tuple[str, str, str, str | None]] = [
    ("overview", "Overview", "/console/", None),
    ("catalog", "Products", "/console/catalog", None),
    ("orders", "Orders", "/console/orders", None),
    ("customers", "Customers", "/console/customers", None),
    ("attribution", "Sharing", "/console/attribution", None),
    ("channels", "WeChat channels", "/console/channels", None),
    ("membership", "Members", "/console/membership", None),
    ("promotions", "Marketing", "/console/promotions", None),
    ("distribution", "Distribution", "/console/distribution", None),
    ("groupbuy", "Group buying", "/console/groupbuy", None),
    ("analytics", "Analytics", "/console/analytics", None),
    ("settings", "Settings", "/console/settings", None),
]


# Slots: named places in a lower domain's page where higher domains show their content without the lower
# domain importing them ("shop.order_paid" on the paid order page, "shop.popup" on every H5 page). A slot
# function is `fn(request, **context) -> Markup | str`; a plain str is escaped.
log = logging.getLogger(__name__)
SlotFn = Callable[..., Any]
_slots: dict[str, list[tuple[str, SlotFn]]] = {}


def register_slot(name: str, fn: SlotFn) -> None:
    """Show `fn`'s output wherever a template calls `slot(name, ...)`. Registering the same function
    (by module and name) again replaces it, so re-imports do not show it twice."""
    key = f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}"
    entries = [e for e in _slots.setdefault(name, []) if e[0] != key]
    entries.append((key, fn))
    _slots[name] = entries


def render_slot(request: Request | None, name: str, **context: Any) -> Markup:
    """Every registered function's output for this slot, in registration order; a failing one is logged
    and shows nothing, never breaking the page."""
    parts: list[str] = []
    for key, fn in _slots.get(name, ()):
        try:
            out = fn(request, **context)
        except Exception:
            log.exception("slot %s: %s failed", name, key)
            continue
        if out:
            parts.append(out if isinstance(out, Markup) else str(escape(out)))
    return Markup("".join(parts))


def _slot_global(ctx: Any, name: str, **context: Any) -> Markup:
    return render_slot(ctx.get("request"), name, **context)


def _fill(text: str, params: dict[str, Any]) -> str:
    """Put the values into a translated template string: "%(name)s" or "{name}" placeholders (one
    style per string; a value is inserted once, never formatted again). Text without values, or
    whose placeholders don't match, is shown as it is."""
    if not params:
        return text
    try:
        return text % params if "%(" in text else text.format(**params)
    except (KeyError, IndexError, ValueError, TypeError):
        return text


def _build() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATE_DIR))
    env = templates.env
    env.add_extension("jinja2.ext.i18n")
    # Our own callables get the keyword arguments (Jinja's "newstyle" wrapper would keep them and
    # apply `%` itself, so "{n}" placeholders stayed unfilled and a bare "%" raised).
    env.install_gettext_callables(  # type: ignore[attr-defined]
        lambda s, **kw: _fill(i18n.gettext(s), kw),
        lambda s, p, n, **kw: _fill(i18n.gettext(s if n == 1 else p), {"n": n, **kw}),
        newstyle=False,
    )
    env.filters["money"] = money.format_cents
    env.filters["yuan"] = lambda c: "" if c is None else money.cents_to_yuan_str(c)
    env.filters["localtime"] = clock.format_local
    env.filters["mask_phone"] = mask_phone
    env.globals["console_menu"] = CONSOLE_MENU
    env.globals["current_locale"] = i18n.get_locale
    env.globals["slot"] = pass_context(_slot_global)
    return templates


templates = _build()


def render(request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200) -> Any:
    ctx = dict(context or {})
    ctx.setdefault("principal", getattr(request.state, "principal", None))
    ctx.setdefault("csrf_token", getattr(request.state, "csrf_token", ""))
    ctx.setdefault("merchant", getattr(request.state, "merchant", None))
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)
