"""create_app(): routers, templates, static files, error handlers, locale."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi import routing as fastapi_routing
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from siyu import DOMAINS, __version__, _has_module
from siyu.config import Settings, get_settings
from siyu.core import i18n
from siyu.core.errors import AppError
from siyu.core.events import load_handlers
from siyu.core.templating import render
from siyu.core.web import ends_unit_of_work, wants_html
from siyu.db import Database, configure, import_all_models, use_database

log = logging.getLogger("siyu")

STATIC_DIR = Path(__file__).resolve().parent / "web" / "static"
LANG_COOKIE = "siyu_lang"

OPENAPI_TAGS = [{"name": d} for d in ("health", *DOMAINS)]


class LocaleMiddleware:
    """Pages: the language cookie, then Accept-Language; the API: Accept-Language. zh-CN by default."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        locale = None
        if not scope.get("path", "").startswith("/api/"):
            for part in headers.get("cookie", "").split(";"):
                name, _, value = part.strip().partition("=")
                if name == LANG_COOKIE:
                    locale = i18n.normalise(value)
        locale = locale or i18n.from_accept_language(headers.get("accept-language")) or i18n.DEFAULT_LOCALE
        token = i18n.set_locale(locale)
        try:
            await self.app(scope, receive, send)
        finally:
            i18n._current.reset(token)


def _validation_details(errors: list[dict[str, Any]]) -> dict[str, Any]:
    fields: dict[str, str] = {}
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
        key = ".".join(loc) or "body"
        fields.setdefault(key, str(err.get("msg", "invalid"))[:300])
    return {"fields": fields}


def _error_response(request: Request, status: int, payload: dict[str, Any]) -> Response:
    if wants_html(request) and request.method in ("GET", "HEAD"):
        return render(request, "error.html", {"status": status, "error": payload["error"]}, status_code=status)
    return JSONResponse(payload, status_code=status)


def _install_error_handlers(app: FastAPI) -> None:
    from siyu.customers.deps import ShopLoginRequired
    from siyu.merchants.deps import LoginRequired

    @app.exception_handler(ShopLoginRequired)
    async def _shop_login_required(request: Request, exc: ShopLoginRequired) -> Response:
        return RedirectResponse(exc.login_url, status_code=303)

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired) -> Response:
        if request.url.path.startswith("/console") and request.method in ("GET", "HEAD"):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/console/login?next={quote(target)}", status_code=303)
        return JSONResponse(exc.to_dict(), status_code=401)

    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> Response:
        return _error_response(request, exc.status_code, exc.to_dict())

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            err = AppError("The request body is not valid JSON.", code="invalid_json", status_code=400)
            return JSONResponse(err.to_dict(), status_code=400)
        err = AppError("Some fields are not valid.", code="validation_error", status_code=422,
                       details=_validation_details(errors))
        return _error_response(request, 422, err.to_dict())

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        codes = {400: ("bad_request", "The request body could not be read."),
                 404: ("not_found", "Not found."), 405: ("method_not_allowed", "This method is not allowed here."),
                 413: ("payload_too_large", "The upload is too large.")}
        code, message = codes.get(exc.status_code, ("http_error", str(exc.detail)))
        err = AppError(message, code=code, status_code=exc.status_code)
        return _error_response(request, exc.status_code, err.to_dict())

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> Response:
        log.info("integrity error answered as 409: %s", exc.orig)
        err = AppError("This conflicts with existing data; reload and try again.", code="conflict", status_code=409)
        return _error_response(request, 409, err.to_dict())

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> Response:
        err = AppError("A value is out of range.", code="value_out_of_range", status_code=400)
        return _error_response(request, 400, err.to_dict())

    @app.exception_handler(OperationalError)
    async def _operational(request: Request, exc: OperationalError) -> Response:
        log.exception("database unavailable")
        err = AppError("The service is busy; try again in a moment.", code="unavailable", status_code=503)
        return _error_response(request, 503, err.to_dict())

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        err = AppError("Something went wrong on our side.", code="internal_error", status_code=500)
        return JSONResponse(err.to_dict(), status_code=500)


MAX_TEXT_BODY = 2 * 1024 * 1024
_TEXT_TYPES = (b"application/json", b"application/x-www-form-urlencoded")


class InputGuardMiddleware:
    """Refuses, before any handler runs, text that no handler should see: a NUL character in the path,
    the query or a JSON/form body (PostgreSQL cannot store it and SQLite would store it silently), and
    JSON/form bodies over 2 MiB. File uploads (multipart) and inbound webhooks pass untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Inbound provider callbacks read their raw bytes, log them, and answer in the provider's shape.
        if scope["type"] != "http" or scope.get("path", "").startswith("/webhooks/"):
            await self.app(scope, receive, send)
            return
        if b"%00" in scope.get("query_string", b"") or b"%00" in (scope.get("raw_path") or b"") or "\x00" in scope["path"]:
            await self._refuse(scope, receive, send, 400, "invalid_characters", "Text must not contain NUL characters.")
            return
        content_type = dict(scope.get("headers", [])).get(b"content-type", b"").split(b";")[0].strip().lower()
        if content_type not in _TEXT_TYPES:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_TEXT_BODY:
                await self._refuse(scope, receive, send, 413, "payload_too_large", "The request body is too large.")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if b"\x00" in body or b"\\u0000" in body or (content_type == _TEXT_TYPES[1] and b"%00" in body):
            await self._refuse(scope, receive, send, 400, "invalid_characters", "Text must not contain NUL characters.")
            return
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str) -> None:
        err = AppError(message, code=code, status_code=status)
        await JSONResponse(err.to_dict(), status_code=status)(scope, receive, send)


class DatabaseMiddleware:
    """Binds every request of this app to one Database (see `create_app(database=...)`)."""

    def __init__(self, app: ASGIApp, database: Database) -> None:
        self.app = app
        self.database = database

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with use_database(self.database):
            await self.app(scope, receive, send)


class AdmissionMiddleware:
    """Lets at most `Settings.max_inflight` requests in at once (4), and never more than the database pool
    has connections or than the worker threads; the others wait here, in the event loop, holding nothing.

    Why: a request's sync dependencies and endpoint run in separate worker-thread hops, holding its
    pooled connection (on SQLite also the write lock) in between. With more requests inside than
    connections or threads, the requests holding connections wait for a thread while every thread
    waits for a connection or the lock: a deadlock broken only by timeouts (500/503 under a burst).
    Admitted requests each hold at most one connection and one thread, so they always progress."""

    MAX_THREADS = 40  # anyio's default worker-thread limit

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._gates: dict[tuple[int, int], asyncio.Semaphore] = {}

    @staticmethod
    def _pool_size(engine: Any) -> int:
        """Connections the engine's pool can hand out at once (0: no fixed size)."""
        pool = engine.pool
        return pool.size() + max(getattr(pool, "_max_overflow", 0), 0) if hasattr(pool, "size") else 0

    def _gate(self) -> asyncio.Semaphore:
        from siyu.db import get_database

        engine = get_database().engine
        key = (id(asyncio.get_running_loop()), id(engine))
        gate = self._gates.get(key)
        if gate is None:
            size = self._pool_size(engine)
            limit = min(self.MAX_THREADS, size) if size > 0 else self.MAX_THREADS
            wanted = get_settings().max_inflight
            gate = self._gates[key] = asyncio.Semaphore(min(limit, wanted) if wanted > 0 else limit)
        return gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        async with self._gate():
            await self.app(scope, receive, send)


class _PrefixGate:
    """`matches` of one included router that first looks the request path's leading segments up in the
    shapes of its routes' paths: a router none of whose routes can match is passed over with a set
    lookup or two instead of trying each route's pattern in turn (~650 routes; the shop API's requests
    used to try most of them). A shape is a route path's first segments, a whole-segment parameter as
    a wildcard, cut before a segment a parameter shares with text or a `:path` parameter. Exact: a
    path a route matches (fully or partly) has that route's shape. A router with a route not matched
    by its path alone (a mount, a host, a websocket route) is always asked. Computed on the router's
    first request (when FastAPI builds its route state anyway); routes are not added after create_app."""

    DEPTH = 6  # "", "api", "v1", "shop", "{slug}", "orders"

    def __init__(self, included: Any) -> None:
        self.included = included
        self.matches = included.matches
        # [(length, wildcard positions, shapes)], None until the first request; [] = always ask.
        self.groups: list[tuple[int, tuple[int, ...], frozenset[tuple[str | None, ...]]]] | None = None

    @classmethod
    def _shape(cls, path: str) -> tuple[str | None, ...]:
        shape: list[str | None] = []
        for segment in path.split("/")[:cls.DEPTH]:
            if "{" in segment or "}" in segment:
                if not (segment.startswith("{") and segment.endswith("}") and segment.count("{") == 1
                        and ":path" not in segment):
                    break
                shape.append(None)
            else:
                shape.append(segment)
        return tuple(shape)

    def _groups(self) -> list[tuple[int, tuple[int, ...], frozenset[tuple[str | None, ...]]]]:
        by_mask: dict[tuple[int, tuple[int, ...]], set[tuple[str | None, ...]]] = {}
        contexts = getattr(self.included, "effective_route_contexts", None)
        if contexts is None:  # another FastAPI than the one this was written for: always ask
            return []
        for context in contexts():
            if isinstance(context.original_route, APIRoute):
                path = context.path
            elif type(context.starlette_route) is Route:
                path = context.starlette_route.path
            else:
                return []
            shape = self._shape(path)
            if len(shape) < 2:
                return []
            wild = tuple(i for i, part in enumerate(shape) if part is None)
            by_mask.setdefault((len(shape), wild), set()).add(shape)
        return [(length, wild, frozenset(shapes)) for (length, wild), shapes in by_mask.items()]

    def __call__(self, scope: Scope) -> tuple[Match, Scope]:
        groups = self.groups
        if groups is None:
            groups = self.groups = self._groups()
        if not groups:
            return self.matches(scope)
        path, root = scope["path"], scope.get("root_path", "")
        if root and path.startswith(root) and (path == root or path[len(root)] == "/"):
            path = path[len(root):]  # as starlette's route matching sees it (get_route_path)
        segments = path.split("/", self.DEPTH)
        for length, wild, shapes in groups:
            if len(segments) < length:
                continue
            key = segments[:length]
            for i in wild:
                key[i] = None
            if tuple(key) in shapes:
                return self.matches(scope)
        return Match.NONE, {}


def _gate_included_routers(app: FastAPI) -> None:
    """Gate each included router (FastAPI's private `_IncludedRouter`: without it, e.g. another FastAPI
    release, the routes are matched as FastAPI does)."""
    included = getattr(fastapi_routing, "_IncludedRouter", None)
    if included is None:
        return
    for route in app.router.routes:
        if isinstance(route, included):
            route.matches = _PrefixGate(route)  # type: ignore[method-assign]  # the instance's, not the class's


def _include_domain_routers(app: FastAPI) -> None:
    for domain in DOMAINS:
        for module in ("api", "views"):
            name = f"siyu.{domain}.{module}"
            if _has_module(name):
                router = getattr(importlib.import_module(name), "router", None)
                if router is not None:
                    _end_units_in_endpoint_threads(router)
                    app.include_router(router)


def _end_units_in_endpoint_threads(router: APIRouter) -> None:
    """Each plain `def` endpoint ends its request's unit of work in its own worker thread
    (`siyu.core.web.ends_unit_of_work`; idempotent: the routers are module-level, apps are made often)."""
    included = getattr(fastapi_routing, "_IncludedRouter", None)
    for route in router.routes:
        if included is not None and isinstance(route, included):
            _end_units_in_endpoint_threads(route.original_router)
        elif isinstance(route, APIRoute) and not inspect.iscoroutinefunction(inspect.unwrap(route.endpoint)):
            route.endpoint = ends_unit_of_work(route.endpoint)
            route.dependant.call = route.endpoint


def create_app(settings: Settings | None = None, *, configure_database: bool = True,
               database: Database | None = None) -> FastAPI:
    """The ASGI app. With `database`, every request uses that Database instead of the process-global
    one (a server living inside another process, e.g. the browser tests' live server)."""
    settings = settings or get_settings()
    if database is None and configure_database:
        configure(settings.database_url)
    import_all_models()
    load_handlers()

    app = FastAPI(title="siyu", version=__version__, openapi_tags=OPENAPI_TAGS,
                  description="siyu (私域): the self-hosted social-retail platform. Money is integer cents.")
    app.add_middleware(AdmissionMiddleware)
    app.add_middleware(InputGuardMiddleware)
    app.add_middleware(LocaleMiddleware)
    if database is not None:
        app.add_middleware(DatabaseMiddleware, database=database)
    _install_error_handlers(app)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/lang/{locale}", include_in_schema=False)
    def switch_language(locale: str, request: Request) -> Response:
        chosen = i18n.normalise(locale) or i18n.DEFAULT_LOCALE
        back = request.headers.get("referer") or "/console/"
        if "://" in back:
            back = "/" + back.split("://", 1)[1].split("/", 1)[-1]
        response = RedirectResponse(back, status_code=303)
        response.set_cookie(LANG_COOKIE, chosen, max_age=365 * 86400, samesite="lax")
        return response

    # Domain routes first: a route under /static (e.g. Plotly's JS served from the installed package)
    # must win over the /static mount.
    _include_domain_routers(app)
    _gate_included_routers(app)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    settings.media_dir.mkdir(parents=True, exist_ok=True)
    app.mount("/media", StaticFiles(directory=str(settings.media_dir)), name="media")
    return app
