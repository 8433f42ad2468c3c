"""Demo customers: thousands of customers with Chinese nicknames, phones, openids, tags and owner
guides, created over the past year. Deterministic (ctx.rng, ctx.now); stats stay zero until the
orders seeder pays orders through record_paid_order."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from siyu.core.demo import DemoContext
from siyu.customers.models import Customer, CustomerIdentity, CustomerTag, CustomerTimeline, Tag, TagGroup

TAG_GROUPS = {
    "客户来源": ["门店扫码", "导购推荐", "朋友圈广告", "直播间", "老带新", "社群"],
    "兴趣偏好": ["护肤", "彩妆", "香氛", "母婴", "运动户外", "家居"],
    "消费能力": ["高消费", "中等消费", "价格敏感"],
}

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彩春菊兰凤洁梅琳素云莲真环雪荣爱妹霞香月莺媛艳瑞凡佳嘉琼勤珍贞莉桂娣叶璧璐娅琦晶妍茜秋珊莎锦黛青倩婷姣婉娴瑾颖露瑶怡婵雁蓓纨仪荷丹蓉眉君琴蕊薇菁梦岚苑婕馨瑗琰韵融园艺咏卿聪澜纯毓悦昭冰爽琬茗羽希宁欣飘育滢馥筠柔竹霭凝晓欢霄枫芸菲寒伊亚宜可姬舒影荔枝思丽"
NICK_WORDS = ["小", "阿", "大", "老"]
NICK_TAILS = ["爱喝茶", "的猫", "不吃香菜", "在路上", "晴天", "小太阳", "学姐", "宝妈", "跑步中", "的日常", "Lucky", "Coco",
              "Amy", "Leo", "向日葵", "柠檬", "橙子", "木木", "悠悠", "一一"]
REGIONS = ["上海 黄浦", "上海 浦东", "上海 徐汇", "杭州 西湖", "杭州 滨江", "苏州 姑苏", "南京 鼓楼", "北京 朝阳",
           "北京 海淀", "广州 天河", "深圳 南山", "成都 锦江", "武汉 江汉", "宁波 鄞州"]
PHONE_PREFIXES = ["130", "131", "132", "135", "136", "137", "138", "139", "150", "151", "152", "157", "158", "159",
                  "166", "177", "180", "181", "186", "187", "188", "189", "199"]


def _nickname(rng: Any) -> str:
    roll = rng.random()
    if roll < 0.45:
        return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
    if roll < 0.75:
        return rng.choice(NICK_WORDS) + rng.choice(GIVEN)
    return rng.choice(GIVEN) + rng.choice(NICK_TAILS)


def seed(session: Session, ctx: DemoContext) -> None:
    rng, merchant_id, now = ctx.rng, ctx.merchant_id, ctx.now

    tag_ids: list[int] = []
    for position, (group_name, names) in enumerate(TAG_GROUPS.items()):
        group = TagGroup(merchant_id=merchant_id, name=group_name, position=position, created_at=now - dt.timedelta(days=366))
        session.add(group)
        session.flush()
        for name in names:
            tag = Tag(merchant_id=merchant_id, group_id=group.id, name=name, created_at=group.created_at)
            session.add(tag)
            session.flush()
            tag_ids.append(tag.id)

    guides = list(ctx.guide_ids)
    n = ctx.count(5000)
    phones: set[str] = set()
    rows: list[dict[str, Any]] = []
    for _i in range(n):
        phone = ""
        if rng.random() < 0.8:
            while not phone or phone in phones:
                phone = rng.choice(PHONE_PREFIXES) + f"{rng.randrange(10**8):08d}"
            phones.add(phone)
        owner = rng.choice(guides) if guides and rng.random() < 0.85 else None
        store = ctx.guide_store.get(owner) if owner else (rng.choice(ctx.store_ids) if ctx.store_ids and rng.random() < 0.5 else None)
        created = now - dt.timedelta(seconds=rng.randrange(365 * 86400))
        birthday = dt.date(rng.randint(1965, 2004), rng.randint(1, 12), rng.randint(1, 28)) if rng.random() < 0.4 else None
        rows.append({
            "merchant_id": merchant_id, "nickname": _nickname(rng), "name": "", "gender": rng.choice(("", "female", "female", "male")),
            "birthday": birthday, "region": rng.choice(REGIONS), "notes": "", "avatar_url": "", "phone": phone,
            "owner_id": owner, "store_id": store, "created_at": created, "updated_at": created,
            "last_order_cents": 0, "max_order_cents": 0, "paid_orders": 0, "total_spent_cents": 0, "refunded_cents": 0,
        })
    rows.sort(key=lambda r: r["created_at"])
    ids = list(session.scalars(insert(Customer).returning(Customer.id, sort_by_parameter_order=True), rows))

    identities: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    timeline: list[dict[str, Any]] = []
    for i, (customer_id, row) in enumerate(zip(ids, rows, strict=True)):
        created = row["created_at"]
        identities.append({"merchant_id": merchant_id, "customer_id": customer_id, "kind": "openid",
                           "value": f"demo-openid-{merchant_id}-{i:06d}", "created_at": created})
        if row["phone"]:
            identities.append({"merchant_id": merchant_id, "customer_id": customer_id, "kind": "phone",
                               "value": row["phone"], "created_at": created})
        for tag_id in rng.sample(tag_ids, rng.choice((0, 1, 1, 2, 2, 3))):
            links.append({"merchant_id": merchant_id, "customer_id": customer_id, "tag_id": tag_id, "created_at": created})
        timeline.append({"merchant_id": merchant_id, "customer_id": customer_id, "kind": "created", "text": "顾客注册",
                         "details": {"identity_kind": "openid"}, "actor_type": "system", "actor_id": None,
                         "actor_name": "", "created_at": created})
    for model, batch in ((CustomerIdentity, identities), (CustomerTag, links), (CustomerTimeline, timeline)):
        if batch:
            session.execute(insert(model), batch)
    session.flush()
    ctx.data["customer_ids"] = ids
    ctx.data["customer_tag_ids"] = tag_ids
