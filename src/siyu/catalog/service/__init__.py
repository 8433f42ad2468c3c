"""The catalogue's business rules, one module per use case; import them from here:
`from siyu.catalog import service`."""

from siyu.catalog.service.categories import (
    category_tree,
    create_category,
    delete_category,
    get_category,
    list_categories,
    update_category,
)
from siyu.catalog.service.csv_import import CSV_COLUMNS, ImportReport, ImportRow, import_products_csv
from siyu.catalog.service.media import ALLOWED_FORMATS, save_upload
from siyu.catalog.service.products import (
    ProductView,
    SkuView,
    change_status,
    create_product,
    get_product,
    get_shop_product,
    get_sku,
    list_products,
    list_shop_products,
    product_view,
    product_views,
    spec_key,
    spec_text,
    update_product,
    update_sku,
)
from siyu.catalog.service.queries import SkuInfo, count_products, get_skus_for_checkout, low_stock_skus
from siyu.catalog.service.stock import (
    MANUAL_STOCK_REASONS,
    STOCK_REASONS,
    OutOfStock,
    adjust_stock,
    post_stock,
    reserve_new,
    set_stock,
    stock_entries,
    stock_of,
)

__all__ = [
    "ALLOWED_FORMATS", "CSV_COLUMNS", "MANUAL_STOCK_REASONS", "STOCK_REASONS", "ImportReport", "ImportRow",
    "OutOfStock", "ProductView", "SkuInfo", "SkuView", "adjust_stock", "category_tree", "change_status",
    "count_products", "create_category", "create_product", "delete_category", "get_category", "get_product",
    "get_shop_product", "get_sku", "get_skus_for_checkout", "import_products_csv", "list_categories",
    "list_products", "list_shop_products", "low_stock_skus", "post_stock", "product_view", "product_views",
    "reserve_new", "save_upload", "set_stock", "spec_key", "spec_text", "stock_entries", "stock_of", "update_category",
    "update_product", "update_sku",
]
