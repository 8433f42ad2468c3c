"""Request and response models of the orders API (API.md, Buying)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Id = Annotated[int, Field(gt=0, le=2**53)]
Cents = Annotated[int, Field(ge=0, le=2**31 - 1)]
Quantity = Annotated[int, Field(ge=1, le=999)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, min_length=5, max_length=20,
                                         pattern=r"^\+?[0-9][0-9 \-]{3,18}[0-9]$")]


class AddressIn(BaseModel):
    """An address: `{name, phone, province, city, district, detail}`."""

    name: ShortText
    phone: Phone
    province: ShortText
    city: ShortText
    district: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)] = ""
    detail: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class AddressCreate(AddressIn):
    is_default: bool = False


class AddressUpdate(BaseModel):
    name: ShortText | None = None
    phone: Phone | None = None
    province: ShortText | None = None
    city: ShortText | None = None
    district: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)] | None = None
    detail: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] | None = None
    is_default: bool | None = None


class AddressRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    phone: str
    province: str
    city: str
    district: str
    detail: str
    is_default: bool


class DeliveryFulfilment(BaseModel):
    type: Literal["delivery"]
    # The address itself, or one from the customer's address book.
    address: AddressIn | None = None
    address_id: Id | None = None


class PickupFulfilment(BaseModel):
    type: Literal["pickup"]
    store_id: Id


class LeaderFulfilment(BaseModel):
    type: Literal["leader"]
    leader_id: Id


FulfilmentIn = Annotated[DeliveryFulfilment | PickupFulfilment | LeaderFulfilment, Field(discriminator="type")]


class CheckoutItem(BaseModel):
    sku_id: Id
    quantity: Quantity


class PromotionChoice(BaseModel):
    """Buy at a campaign's price (the promotions domain prices it): a flash sale or a ladder price by
    `campaign_id`; a team buy by `campaign_id` (a new team) or also `team_id` (join that team); a
    bargain by `bargain_id` (the customer's own bargain, at its current price)."""

    kind: Literal["flash_sale", "team_buy", "bargain", "ladder"]
    campaign_id: Id | None = None
    team_id: Id | None = None
    bargain_id: Id | None = None


class CheckoutRequest(BaseModel):
    """The body of checkout preview and order creation."""

    items: Annotated[list[CheckoutItem], Field(min_length=1, max_length=50)]
    coupon_ids: Annotated[list[Id], Field(max_length=10)] = []
    points: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    use_balance: bool = False
    # A points-mall exchange: the mall item the (single) item is exchanged as (membership prices it).
    points_mall_item_id: Id | None = None
    # Buy at a campaign's price (one campaign per order; see PromotionChoice).
    promotion: PromotionChoice | None = None
    share_code: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] | None = None
    fulfilment: FulfilmentIn
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""


class CartLineCreate(BaseModel):
    sku_id: Id
    quantity: Quantity = 1


class CartLineUpdate(BaseModel):
    quantity: Quantity | None = None
    selected: bool | None = None


class PayRequest(BaseModel):
    method: Literal["sandbox", "wechatpay", "balance"]
    # WeChat Pay JSAPI needs the payer's openid; H5 needs the client's IP (taken from the request).
    openid: Annotated[str, StringConstraints(strip_whitespace=True, max_length=128)] | None = None


class RefundLineIn(BaseModel):
    order_line_id: Id
    quantity: Quantity


class RefundCreate(BaseModel):
    """`{lines: [{order_line_id, quantity}], reason}`; without lines: the whole order."""

    lines: Annotated[list[RefundLineIn], Field(max_length=100)] = []
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    photos: Annotated[list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500,
                                                             pattern=r"^(https?://|/)\S+$")]],
                      Field(max_length=9)] = []


class RefundApprove(BaseModel):
    restock: bool = False


class RefundReject(BaseModel):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class ShipRequest(BaseModel):
    carrier: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
    tracking_no: Annotated[str, StringConstraints(strip_whitespace=True, min_length=4, max_length=60,
                                                  pattern=r"^[A-Za-z0-9\-]+$")]


class VerifyPickupRequest(BaseModel):
    code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=6, max_length=8, pattern=r"^[0-9]+$")]


class CancelRequest(BaseModel):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)] = ""


class ShippingRuleIn(BaseModel):
    flat_cents: Cents = 0
    free_over_cents: Cents | None = None


class ShippingRulesIn(ShippingRuleIn):
    provinces: Annotated[dict[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)],
                              ShippingRuleIn], Field(max_length=40)] = {}


class OrderSettingsIn(BaseModel):
    order_expiry_minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60)] | None = None
    auto_complete_days: Annotated[int, Field(ge=1, le=365)] | None = None
    after_sales_days: Annotated[int, Field(ge=0, le=365)] | None = None
    shipping: ShippingRulesIn | None = None

