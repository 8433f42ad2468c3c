"""The Jinja2 environment for the console and the H5 shop: translations, money and time filters,
the console menu, and the CSRF token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates

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
    return templates


templates = _build()


def render(request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200) -> Any:
    ctx = dict(context or {})
    ctx.setdefault("principal", getattr(request.state, "principal", None))
    ctx.setdefault("csrf_token", getattr(request.state, "csrf_token", ""))
    ctx.setdefault("merchant", getattr(request.state, "merchant", None))
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)
