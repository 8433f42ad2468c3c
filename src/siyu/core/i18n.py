"""zh-CN by default, English selectable. Message ids are English; the zh_CN catalogue translates.

Catalogues are Babel `.po` files, one per domain, under `siyu/locale/<locale>/*.po`; they are
read and merged at start-up (no compile step). The current locale lives in a context variable
set per request by the middleware in app.py.
"""

from __future__ import annotations

import contextvars
import threading
from pathlib import Path

from babel.messages.pofile import read_po

LOCALES = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"

_current: contextvars.ContextVar[str] = contextvars.ContextVar("siyu_locale", default=DEFAULT_LOCALE)


_catalogues: dict[str, dict[str, str]] = {}
_catalogues_lock = threading.Lock()


def _catalogue(locale: str) -> dict[str, str]:
    """The locale's messages, read once per process: the first requests of a new server arrive together
    (a bench's 32 buyers), and each used to parse every .po file itself (an unlocked lru_cache)."""
    messages = _catalogues.get(locale)
    if messages is None:
        with _catalogues_lock:
            messages = _catalogues.get(locale)
            if messages is None:
                messages = _catalogues[locale] = _read_catalogue(locale)
    return messages


def _read_catalogue(locale: str) -> dict[str, str]:
    messages: dict[str, str] = {}
    folder = LOCALE_DIR / locale
    if not folder.is_dir():
        return messages
    for po in sorted(folder.glob("*.po")):
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=locale)
        for message in catalog:
            if message.id and message.string and not message.fuzzy and isinstance(message.id, str):
                messages[message.id] = message.string
    return messages


def get_locale() -> str:
    return _current.get()


def set_locale(locale: str) -> contextvars.Token[str]:
    return _current.set(normalise(locale) or DEFAULT_LOCALE)


def normalise(value: str | None) -> str | None:
    if not value:
        return None
    v = value.strip().replace("-", "_").lower()
    if v.startswith("zh"):
        return "zh_CN"
    if v.startswith("en"):
        return "en"
    return None


def from_accept_language(header: str | None) -> str | None:
    """The first supported language in an Accept-Language header, by q order."""
    if not header:
        return None
    choices = []
    for i, part in enumerate(header.split(",")):
        bits = part.strip().split(";")
        q = 1.0
        for b in bits[1:]:
            b = b.strip()
            if b.startswith("q="):
                try:
                    q = float(b[2:])
                except ValueError:
                    q = 0.0
        choices.append((-q, i, bits[0]))
    for _, _, lang in sorted(choices):
        found = normalise(lang)
        if found:
            return found
    return None


def gettext(message: str, locale: str | None = None, **params: object) -> str:
    text = _catalogue(locale or get_locale()).get(message, message) if (locale or get_locale()) != "en" else message
    if params:
        try:
            return text.format(**params)
        except (KeyError, IndexError, ValueError):
            return text
    return text


def ngettext(singular: str, plural: str, n: int, **params: object) -> str:
    return gettext(singular if n == 1 else plural, n=n, **params)


_ = gettext
