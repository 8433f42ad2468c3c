"""The demo catalogue: ~12 top categories with children, ctx.count(300) products with 1–6 SKUs,
stock opened through ledger entries, and a dozen generated product pictures. Deterministic: only
ctx.rng and ctx.now; bulk inserts so that it takes a second or two."""

from __future__ import annotations

import datetime as dt
import io
import itertools
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import insert
from sqlalchemy.orm import Session

from siyu.catalog.models import Category, MediaFile, Product, Sku
from siyu.catalog.service.common import STOCK_KIND, STOCK_OWNER, spec_key
from siyu.config import get_settings
from siyu.core.demo import DemoContext
from siyu.ledger import service as ledger

# top category -> (children, spec dimensions, price range in yuan, product nouns, adjectives)
CATALOGUE: list[tuple[str, list[str], dict[str, list[str]], tuple[int, int], list[str], list[str]]] = [
    ("服装", ["上衣", "裤装", "外套"], {"颜色": ["白", "黑", "灰", "藏青"], "尺码": ["S", "M", "L", "XL"]}, (59, 399),
     ["纯棉T恤", "卫衣", "衬衫", "休闲裤", "牛仔裤", "风衣", "针织开衫", "羽绒服"], ["基础款", "宽松", "修身", "复古", "简约"]),
    ("鞋履", ["运动鞋", "休闲鞋"], {"颜色": ["白", "黑", "米"], "尺码": ["37", "38", "39", "40", "41", "42"]}, (129, 699),
     ["跑步鞋", "板鞋", "帆布鞋", "乐福鞋", "老爹鞋"], ["轻便", "透气", "经典", "缓震"]),
    ("箱包", ["双肩包", "手提包"], {"颜色": ["黑", "棕", "卡其"]}, (99, 899),
     ["通勤双肩包", "托特包", "斜挎包", "旅行箱"], ["大容量", "防泼水", "真皮", "轻量"]),
    ("美妆", ["护肤", "彩妆"], {"规格": ["30ml", "50ml", "100ml"]}, (69, 599),
     ["保湿精华", "洁面乳", "防晒霜", "口红", "粉底液", "面膜"], ["补水", "温和", "清透", "持久"]),
    ("个护", ["洗护", "口腔"], {"规格": ["250ml", "500ml"]}, (19, 129),
     ["洗发水", "沐浴露", "牙膏", "电动牙刷", "护手霜"], ["清爽", "滋润", "植物", "无硅油"]),
    ("食品", ["零食", "粮油", "速食"], {"规格": ["250g", "500g", "1kg"]}, (9, 159),
     ["坚果礼盒", "牛肉干", "东北大米", "手工挂面", "螺蛳粉", "黑芝麻丸"], ["原味", "香辣", "低糖", "家庭装"]),
    ("茶饮", ["绿茶", "红茶", "咖啡"], {"规格": ["100g", "250g"]}, (39, 499),
     ["西湖龙井", "正山小种", "铁观音", "挂耳咖啡", "白毫银针"], ["明前", "特级", "手工", "浓香"]),
    ("母婴", ["奶粉", "童装"], {"段位": ["1段", "2段", "3段"]}, (49, 399),
     ["婴儿奶粉", "纸尿裤", "儿童睡衣", "湿巾"], ["亲肤", "有机", "柔软"]),
    ("家居", ["厨具", "床品", "收纳"], {"颜色": ["白", "灰", "蓝"]}, (29, 699),
     ["不粘锅", "四件套", "收纳箱", "香薰蜡烛", "保温杯"], ["北欧风", "日式", "加厚", "大号"]),
    ("数码", ["耳机", "配件"], {"颜色": ["黑", "白"], "版本": ["标准版", "Pro"]}, (49, 1999),
     ["蓝牙耳机", "充电宝", "数据线", "智能手表", "键盘"], ["降噪", "快充", "无线", "轻薄"]),
    ("运动", ["瑜伽", "户外"], {"颜色": ["紫", "黑", "粉"], "尺码": ["S", "M", "L"]}, (39, 599),
     ["瑜伽垫", "速干T恤", "登山杖", "运动水壶", "跳绳"], ["专业", "防滑", "轻量"]),
    ("宠物", ["猫咪", "狗狗"], {"规格": ["1.5kg", "5kg"]}, (19, 299),
     ["猫粮", "狗粮", "猫砂", "宠物零食"], ["全价", "冻干", "天然"]),
]
COLOURS = [(239, 83, 80), (255, 167, 38), (255, 213, 79), (102, 187, 106), (38, 166, 154), (41, 182, 246),
           (92, 107, 192), (171, 71, 188), (236, 64, 122), (141, 110, 99), (120, 144, 156), (7, 193, 96)]
FONT_PATHS = ["/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc", "/usr/share/fonts/opentype/noto/NotoSerifCJK-Bold.ttc",
              "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"]


def _font(size: int) -> Any:
    for path in FONT_PATHS:
        if Path(path).exists():
            try:
                return ImageFont.truetype(path, size)
            except OSError:
                continue
    return None


def make_images(merchant_id: int, labels: list[str]) -> list[str]:
    """One simple colourful square per label (the label written when a CJK font is there, shapes
    either way), saved as media_dir/<merchant_id>/demo-NN.png; returns their URLs."""
    folder = get_settings().media_dir / str(merchant_id)
    folder.mkdir(parents=True, exist_ok=True)
    font = _font(64)
    urls = []
    for i, label in enumerate(labels):
        colour = COLOURS[i % len(COLOURS)]
        img = Image.new("RGB", (480, 480), colour)
        draw = ImageDraw.Draw(img)
        light = tuple(min(255, c + 70) for c in colour)
        dark = tuple(max(0, c - 60) for c in colour)
        shape = i % 3
        if shape == 0:
            draw.ellipse((90, 90, 390, 390), fill=light)
        elif shape == 1:
            draw.rounded_rectangle((100, 120, 380, 360), radius=40, fill=light)
        else:
            draw.polygon([(240, 80), (400, 380), (80, 380)], fill=light)
        draw.rectangle((0, 420, 480, 480), fill=dark)
        if font is not None:
            box = draw.textbbox((0, 0), label, font=font)
            draw.text(((480 - (box[2] - box[0])) / 2, 200 - (box[3] - box[1]) / 2), label, font=font, fill=dark)
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        name = f"demo-{i + 1:02d}.png"
        (folder / name).write_bytes(buf.getvalue())
        urls.append(f"/media/{merchant_id}/{name}")
    return urls


def _price(rng: Any, low: int, high: int) -> int:
    """A shop-like price in cents: whole yuan ending in 9, or .90."""
    yuan = rng.randint(low, high)
    return (yuan - yuan % 10 + 9) * 100 if rng.random() < 0.7 else yuan * 100 + 90


def seed(session: Session, ctx: DemoContext) -> None:
    rng = ctx.rng
    merchant_id = ctx.merchant_id
    now = ctx.now

    # categories, top levels in order, then their children
    top_ids = list(session.scalars(insert(Category).returning(Category.id, sort_by_parameter_order=True), [
        {"merchant_id": merchant_id, "parent_id": None, "name": name, "sort_order": i, "created_at": now}
        for i, (name, *_rest) in enumerate(CATALOGUE)]))
    child_rows = [{"merchant_id": merchant_id, "parent_id": top_ids[i], "name": child, "sort_order": j, "created_at": now}
                  for i, entry in enumerate(CATALOGUE) for j, child in enumerate(entry[1])]
    child_ids = list(session.scalars(insert(Category).returning(Category.id, sort_by_parameter_order=True), child_rows))
    children_of: dict[int, list[int]] = {}
    for row, cid in zip(child_rows, child_ids, strict=True):
        children_of.setdefault(row["parent_id"], []).append(cid)

    images = make_images(merchant_id, [entry[0] for entry in CATALOGUE])
    session.execute(insert(MediaFile), [
        {"merchant_id": merchant_id, "path": url.removeprefix("/media/"), "url": url, "content_type": "image/png",
         "size_bytes": 0, "width": 480, "height": 480, "original_name": url.rsplit("/", 1)[-1], "uploaded_by": None,
         "created_at": now} for url in images])

    # products
    n = ctx.count(300)
    products: list[dict[str, Any]] = []
    plans: list[tuple[list[dict[str, str]], tuple[int, int]]] = []
    used_titles: set[str] = set()
    for k in range(n):
        ci = k % len(CATALOGUE)
        name, _children, dims, price_range, nouns, adjectives = CATALOGUE[ci]
        noun = rng.choice(nouns)
        title = f"{rng.choice(adjectives)}{noun}"
        if title in used_titles:
            title = f"{title} {k + 1:03d}"
        used_titles.add(title)
        # 1–6 SKUs: a random subset of the combinations of the category's dimensions
        combos = [dict(zip(dims, values, strict=True)) for values in itertools.product(*dims.values())]
        count = min(len(combos), rng.randint(1, 6))
        specs = sorted(rng.sample(range(len(combos)), count))
        status = "on_sale" if rng.random() < 0.9 else rng.choice(["draft", "off_sale"])
        created = now - dt.timedelta(days=rng.randint(1, 365), minutes=rng.randint(0, 1439))
        image_index = ci if rng.random() < 0.8 else rng.randrange(len(images))
        products.append({
            "merchant_id": merchant_id, "category_id": rng.choice(children_of[top_ids[ci]]), "title": title,
            "subtitle": f"{name}精选 · {rng.choice(['新品', '爆款', '限时特惠', '店长推荐', '会员专享'])}",
            "description": f"{title}\n{rng.choice(adjectives)}设计，品质之选。\n7 天无理由退换，全国包邮。",
            "images": [images[image_index]] + ([images[(image_index + 1) % len(images)]] if rng.random() < 0.3 else []),
            "status": status, "sort_order": 0, "created_at": created, "updated_at": created,
        })
        plans.append(([combos[i] for i in specs], price_range))
    product_ids = list(session.scalars(insert(Product).returning(Product.id, sort_by_parameter_order=True), products))

    sku_rows: list[dict[str, Any]] = []
    stock: list[int] = []
    for pid, product, (specs, (low, high)) in zip(product_ids, products, plans, strict=True):
        base = _price(rng, low, high)
        for j, spec in enumerate(specs):
            price = base + (j % 3) * 1000 if len(specs) > 1 and "版本" in spec else base
            list_price = (price * rng.choice([12, 13, 15]) // 1000) * 100 if rng.random() < 0.6 else None
            sku_rows.append({
                "merchant_id": merchant_id, "product_id": pid, "spec": spec, "spec_key": spec_key(spec),
                "price_cents": price, "list_price_cents": list_price, "weight_g": rng.choice([100, 250, 500, 1000]),
                "code": f"D{pid:05d}-{j + 1}", "active": True, "sort_order": j,
                "created_at": product["created_at"], "updated_at": product["created_at"],
            })
            # a few SKUs run low, so the dashboard has stock alerts
            stock.append(rng.randint(0, 9) if rng.random() < 0.08 else rng.randint(20, 300))
    sku_ids = list(session.scalars(insert(Sku).returning(Sku.id, sort_by_parameter_order=True), sku_rows))
    ledger.open_accounts(session, merchant_id=merchant_id, kind=STOCK_KIND, owner_type=STOCK_OWNER,
                         opening=dict(zip(sku_ids, stock, strict=True)), reason="initial", key_prefix="stock-initial",
                         note="demo", actor=ctx.admin)

    on_sale = {pid for pid, p in zip(product_ids, products, strict=True) if p["status"] == "on_sale"}
    ctx.data["product_ids"] = product_ids
    ctx.data["sku_ids"] = sku_ids
    ctx.data["category_ids"] = top_ids + child_ids
    ctx.data["on_sale_product_ids"] = [pid for pid in product_ids if pid in on_sale]
    # What the order seeder needs to price lines without a query per SKU.
    ctx.data["on_sale_skus"] = [
        {"sku_id": sid, "product_id": row["product_id"], "price_cents": row["price_cents"]}
        for sid, row in zip(sku_ids, sku_rows, strict=True) if row["product_id"] in on_sale]
