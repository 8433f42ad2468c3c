"""REST routes of channels: the official-account and WeCom callbacks (/webhooks/…), and the staff's
QR codes, contact ways, settings, figures and inbound log (/api/v1/admin/channels/…)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from siyu.attribution.service import posters
from siyu.channels.models import OaQrCode
from siyu.channels.schemas import (
    ChannelSettingsRead,
    ChannelSettingsWrite,
    ContactWayList,
    ContactWayRead,
    ContactWayWrite,
    Figures,
    Id,
    InboundPage,
    InboundRead,
    OaQrCodeCreate,
    OaQrCodeList,
    OaQrCodeRead,
)
from siyu.channels.service import codes, figures, inbound, oa, wecom
from siyu.channels.service import settings as channel_settings
from siyu.channels.service.inbound import CallbackResult
from siyu.config import get_settings
from siyu.core.errors import AppError
from siyu.core.web import DbSession
from siyu.merchants import service as merchants
from siyu.merchants.deps import ShopMerchant, Staff

router = APIRouter(tags=["channels"])


async def raw_body(request: Request) -> bytes:
    """The body as sent, cut one byte past the limit so an oversized one is refused unread."""
    limit = inbound.MAX_BODY_BYTES + 1
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


RawBody = Annotated[bytes, Depends(raw_body)]


# A refusal is answered in our error shape (WeChat only reads 200 answers; it retries the others).
REFUSALS = {
    400: ("bad_callback", "The callback could not be read, or is too old."),
    403: ("invalid_signature", "The callback's signature is not valid."),
    404: ("channel_not_configured", "This channel is not configured for the shop."),
    413: ("payload_too_large", "The request body is too large."),
}


def _answer(result: CallbackResult) -> Response:
    if result.status_code >= 400:
        code, message = REFUSALS.get(result.status_code, ("bad_callback", REFUSALS[400][1]))
        error = AppError(message, code=code, status_code=result.status_code)
        return JSONResponse(error.to_dict(), status_code=result.status_code)
    return PlainTextResponse(result.text, status_code=result.status_code)


def _query(request: Request) -> dict[str, str]:
    return {k: v[:2000] for k, v in request.query_params.items()}


@router.get("/webhooks/wechat/oa/{m}", response_class=PlainTextResponse)
def oa_url_check(merchant: ShopMerchant, request: Request, session: DbSession) -> Response:
    """WeChat's server-URL check: answers `echostr` when `signature` is the account's."""
    return _answer(oa.verify_url(session, merchant=merchant, query=_query(request)))


@router.post("/webhooks/wechat/oa/{m}", response_class=PlainTextResponse)
def oa_callback(merchant: ShopMerchant, request: Request, session: DbSession, body: RawBody) -> Response:
    """A message or event from the official account (plain or safe mode). Answers "success", or a 4xx
    error when refused (logged; nothing else changes)."""
    return _answer(oa.handle(session, merchant=merchant, query=_query(request), body=body))


@router.get("/webhooks/wecom/{m}", response_class=PlainTextResponse)
def wecom_url_check(merchant: ShopMerchant, request: Request, session: DbSession) -> Response:
    """WeCom's URL check: answers the decrypted `echostr`."""
    return _answer(wecom.verify_url(session, merchant=merchant, query=_query(request)))


@router.post("/webhooks/wecom/{m}", response_class=PlainTextResponse)
def wecom_callback(merchant: ShopMerchant, request: Request, session: DbSession, body: RawBody) -> Response:
    """An encrypted WeCom event (external contacts)."""
    return _answer(wecom.handle(session, merchant=merchant, query=_query(request), body=body))


# ---------------------------------------------------------------- staff


def qr_read(code: OaQrCode) -> OaQrCodeRead:
    read = OaQrCodeRead.model_validate(code)
    read.qr_png_url = f"/api/v1/admin/channels/oa-qrcodes/{code.id}/qr.png"
    return read


@router.get("/api/v1/admin/channels/oa-qrcodes", response_model=OaQrCodeList)
def list_oa_qrcodes(session: DbSession, principal: Staff) -> OaQrCodeList:
    return OaQrCodeList(items=[qr_read(c) for c in codes.list_oa_qr(session, actor=principal)])


@router.post("/api/v1/admin/channels/oa-qrcodes", response_model=OaQrCodeRead)
def create_oa_qrcode(body: OaQrCodeCreate, session: DbSession, principal: Staff, response: Response) -> OaQrCodeRead:
    """The store's or guide's permanent official-account QR code (201 when made now, 200 when it existed)."""
    code, created = codes.create_oa_qr(session, actor=principal, store_id=body.store_id, staff_id=body.staff_id)
    response.status_code = 201 if created else 200
    return qr_read(code)


@router.get("/api/v1/admin/channels/oa-qrcodes/{code_id}/qr.png", response_class=Response)
def oa_qrcode_png(code_id: Id, session: DbSession, principal: Staff) -> Response:
    """The code drawn from its content URL (what WeChat's own image shows)."""
    code = codes.get_oa_qr(session, code_id, actor=principal)
    return Response(posters.qr_png(code.url), media_type="image/png",
                    headers={"Cache-Control": "private, max-age=86400"})


@router.get("/api/v1/admin/channels/wecom/contact-ways", response_model=ContactWayList)
def list_contact_ways(session: DbSession, principal: Staff) -> ContactWayList:
    return ContactWayList(items=[ContactWayRead.model_validate(w)
                                 for w in codes.list_contact_ways(session, actor=principal)])


@router.put("/api/v1/admin/channels/wecom/contact-ways", response_model=ContactWayRead)
def put_contact_way(body: ContactWayWrite, session: DbSession, principal: Staff) -> ContactWayRead:
    way = codes.set_contact_way(session, actor=principal, staff_id=body.staff_id, wecom_userid=body.wecom_userid,
                                state=body.state, config_id=body.config_id)
    return ContactWayRead.model_validate(way)


def settings_read(session: DbSession, merchant_id: int) -> ChannelSettingsRead:
    merchant = merchants.get_merchant(session, merchant_id)
    base = get_settings().public_base_url.rstrip("/")
    return ChannelSettingsRead(**channel_settings.public_view(session, merchant_id=merchant_id),
                               oa_callback_url=f"{base}/webhooks/wechat/oa/{merchant.slug}",
                               wecom_callback_url=f"{base}/webhooks/wecom/{merchant.slug}")


@router.get("/api/v1/admin/channels/settings", response_model=ChannelSettingsRead)
def get_channel_settings(session: DbSession, principal: Staff) -> ChannelSettingsRead:
    principal.require("merchant.manage")
    return settings_read(session, principal.merchant_id)


@router.patch("/api/v1/admin/channels/settings", response_model=ChannelSettingsRead)
def patch_channel_settings(body: ChannelSettingsWrite, session: DbSession, principal: Staff) -> ChannelSettingsRead:
    values = body.model_dump(exclude={"clear"}, exclude_none=True)
    channel_settings.update(session, actor=principal, values=values, clear=tuple(body.clear))
    return settings_read(session, principal.merchant_id)


@router.get("/api/v1/admin/channels/figures", response_model=Figures)
def channel_figures(session: DbSession, principal: Staff,
                    days: Annotated[int, Query(ge=1, le=366)] = 30) -> Figures:
    principal.require("merchant.manage")
    return Figures(**figures.subscription_figures(session, actor=principal, days=days))


@router.get("/api/v1/admin/channels/inbound", response_model=InboundPage)
def inbound_log(session: DbSession, principal: Staff,
                channel: Annotated[str | None, Query(max_length=10)] = None,
                outcome: Annotated[str | None, Query(max_length=20)] = None,
                cursor: Annotated[str | None, Query(max_length=200)] = None,
                limit: Annotated[int | None, Query(ge=1, le=100)] = None) -> InboundPage:
    page = figures.list_inbound(session, actor=principal, channel=channel, outcome=outcome, cursor=cursor, limit=limit)
    return InboundPage(items=[InboundRead.model_validate(m) for m in page.items], next_cursor=page.next_cursor)
