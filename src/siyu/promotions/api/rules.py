"""promotions: the admin routes every rule-based play shares (payment offers, pop-ups): list with figures,
create, read with figures, replace, change status. The area gives its path, body model, how a body becomes
its service's input, how a rule is shown, and its service (a `RuleBook` plus `figures`).

No `from __future__ import annotations` here: the route functions are made inside `add_rule_routes`, and
FastAPI reads their parameter types from the annotations, which must be the area's own classes."""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from siyu.core.web import DbSession
from siyu.merchants.deps import Staff
from siyu.promotions.schemas.split_coupons import StatusBody
from siyu.promotions.service.split_coupons import require_staff

PathId = Annotated[int, Path(gt=0, le=2**53)]
Cursor = Annotated[str | None, Query(max_length=200)]
Limit = Annotated[int | None, Query(ge=1, le=100)]


def add_rule_routes(router: APIRouter, path: str, *, body: type[BaseModel], to_data: Callable[[Any], Any],
                    read: Callable[..., dict[str, Any]], service: Any) -> None:
    """GET/POST `path`, GET/PUT `path/{rule_id}`, POST `path/{rule_id}/status` on `router`."""

    def list_rules(session: DbSession, principal: Staff, cursor: Cursor = None, limit: Limit = None) -> dict[str, Any]:
        page = service.list_rules(session, actor=principal, cursor=cursor, limit=limit)
        figs = service.figures(session, merchant_id=principal.merchant_id, rule_ids=[r.id for r in page.items])
        return {"items": [read(r, figs[r.id]) for r in page.items], "next_cursor": page.next_cursor}

    def create_rule(data: body, session: DbSession, principal: Staff) -> dict[str, Any]:  # type: ignore[valid-type]
        return read(service.create_rule(session, actor=principal, data=to_data(data)))

    def get_rule(rule_id: PathId, session: DbSession, principal: Staff) -> dict[str, Any]:
        require_staff(principal)
        row = service.get_rule(session, rule_id, merchant_id=principal.merchant_id)
        return read(row, service.figures(session, merchant_id=principal.merchant_id, rule_ids=[row.id])[row.id])

    def update_rule(rule_id: PathId, data: body, session: DbSession,  # type: ignore[valid-type]
                    principal: Staff) -> dict[str, Any]:
        return read(service.update_rule(session, rule_id, actor=principal, data=to_data(data)))

    def change_status(rule_id: PathId, data: StatusBody, session: DbSession, principal: Staff) -> dict[str, Any]:
        return read(service.change_status(session, rule_id, actor=principal, action=data.action))

    name = path.rstrip("/").rsplit("/", 1)[-1].replace("-", "_")
    router.add_api_route(path, list_rules, methods=["GET"], name=f"list_{name}")
    router.add_api_route(path, create_rule, methods=["POST"], status_code=201, name=f"create_{name}")
    router.add_api_route(path + "/{rule_id}", get_rule, methods=["GET"], name=f"get_{name}")
    router.add_api_route(path + "/{rule_id}", update_rule, methods=["PUT"], name=f"update_{name}")
    router.add_api_route(path + "/{rule_id}/status", change_status, methods=["POST"], name=f"change_status_{name}")
