"""The orders domain's business rules, one module per use case; import them from here:
`from siyu.orders import service`."""

from siyu.orders.service.addresses import (
    address_snapshot,
    create_address,
    default_address,
    delete_address,
    get_address,
    list_addresses,
    update_address,
)
from siyu.orders.service.cart import (
    CartItem,
    add_to_cart,
    cart_summary,
    checkout_items,
    get_cart_line,
    list_cart,
    remove_cart_line,
    select_all,
    update_cart_line,
)
from siyu.orders.service.checkout import (
    breakdown,
    build_context,
    create_order,
    new_order_no,
    place_order,
    preview,
)
from siyu.orders.service.common import (
    OrderOnHold,
    OrderSettings,
    OutOfStock,
    SkuUnavailable,
    after_sales_closes_at,
    after_sales_days,
    change_status,
    get_order,
    hold_fulfilment,
    order_lines,
    order_settings,
    release_fulfilment,
)
from siyu.orders.service.facts import (
    PaidOrderFact,
    customer_order_totals,
    customer_purchase_months,
    fact_of_paid_event,
    first_purchase_facts,
    kept_buyers_select,
    order_now,
    paid_customers_since,
    paid_goods_select,
    paid_order_fact,
    paid_order_facts,
    paid_order_facts_of,
    shanghai_day,
)
from siyu.orders.service.lifecycle import (
    BulkShipRow,
    apply_payment,
    auto_complete,
    bulk_ship_csv,
    cancel_order,
    complete_order,
    confirm_receipt,
    expire_unpaid,
    find_by_order_no,
    pay_order,
    pickup_qr_png,
    pickup_qr_svg,
    record_payment,
    ship_order,
    verify_pickup,
    verify_pickup_code,
)
from siyu.orders.service.merge import move_customer_rows
from siyu.orders.service.pages import *  # noqa: F403  (page helpers, see pages.__all__)
from siyu.orders.service.queries import (
    EXPORT_COLUMNS,
    OrderDetail,
    OrderFilter,
    export_rows,
    history_of,
    iter_csv,
    lines_of,
    list_orders,
    order_detail,
    today_figures,
)
from siyu.orders.service.refunds import (
    RefundExceedsPaid,
    approve_refund,
    complete_refund,
    get_refund,
    list_refunds,
    record_provider_refund,
    refund_lines_of,
    refund_price_difference,
    refundable_lines,
    refunds_of_order,
    reject_refund,
    request_refund,
    unit_prefix,
    waiting_count,
)
from siyu.orders.service.service_orders import create_service_order, refund_service_order
from siyu.orders.service.settings import get_order_settings, update_order_settings

__all__ = [
    "PaidOrderFact", "customer_order_totals", "customer_purchase_months", "first_purchase_facts", "paid_order_facts",
    "fact_of_paid_event", "kept_buyers_select", "paid_goods_select", "paid_order_fact", "paid_order_facts_of", "paid_customers_since", "order_now", "shanghai_day",
    "move_customer_rows", "create_service_order", "refund_service_order",
    "OrderOnHold", "hold_fulfilment", "release_fulfilment",
    "EXPORT_COLUMNS", "BulkShipRow", "CartItem", "OrderDetail", "OrderFilter", "OrderSettings", "OutOfStock",
    "RefundExceedsPaid", "SkuUnavailable", "add_to_cart", "address_snapshot", "after_sales_closes_at",
    "after_sales_days", "apply_payment", "approve_refund", "auto_complete", "breakdown", "build_context",
    "bulk_ship_csv", "cancel_order", "cart_summary", "change_status", "checkout_items", "complete_order",
    "complete_refund", "confirm_receipt", "create_address", "create_order", "place_order", "default_address", "delete_address",
    "expire_unpaid", "export_rows", "find_by_order_no", "get_address", "get_cart_line", "get_order",
    "get_order_settings", "get_refund", "history_of", "iter_csv", "lines_of", "list_addresses", "list_cart",
    "list_orders", "list_refunds", "new_order_no", "order_detail", "order_lines", "order_settings", "pay_order",
    "pickup_qr_png", "pickup_qr_svg", "preview", "record_payment", "record_provider_refund", "refund_lines_of",
    "refund_price_difference",
    "refundable_lines", "refunds_of_order", "reject_refund", "remove_cart_line", "request_refund", "select_all",
    "ship_order", "today_figures", "unit_prefix", "update_address", "update_cart_line", "update_order_settings",
    "verify_pickup", "verify_pickup_code", "waiting_count",
]
