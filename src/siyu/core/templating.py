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
    ("membership", "Members", "/console/membership", None),
    ("distribution", "Distribution", "/console/distribution", None),
    ("groupbuy", "Group buying", "/console/groupbuy", None),
    ("settings", "Settings", "/console/settings", None),
]


def _build() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATE_DIR))
    env = templates.env
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(  # type: ignore[attr-defined]
        lambda s, **kw: i18n.gettext(s, **kw),
        lambda s, p, n, **kw: i18n.ngettext(s, p, n, **kw),
        newstyle=True,
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
