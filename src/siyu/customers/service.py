"""Customers: identities, profile, tags, owner, purchase stats, merge, timeline, and customer
sign-in. Services flush, never commit; every read of customers goes through `scoped()`."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import re
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from sqlalchemy import (
    BigInteger,
    Select,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from siyu.core import audit, clock
from siyu.core.auth import Principal, Role, get_scoped, scoped, system_principal
from siyu.core.errors import Conflict, NotFound, ValidationFailed, field_error
from siyu.core.events import emit
from siyu.core.i18n import gettext as _
from siyu.core.pagination import Page, paginate
from siyu.core.privacy import mask_phone
from siyu.customers import events
from siyu.customers.models import (
    GENDERS,
    IDENTITY_KINDS,
    Customer,
    CustomerIdentity,
    CustomerStatChange,
    CustomerTag,
    CustomerTimeline,
    CustomerToken,
    Tag,
    TagGroup,
)
from siyu.db import UTCDateTime, execute_core, upsert_insert
from siyu.merchants import service as merchants

PHONE_RE = re.compile(r"^\+?[0-9]{5,20}$")
MAX_ID = 2**53
MAX_BULK = 1000
EXPORT_MAX_ROWS = 200_000
PROFILE_FIELDS = ("nickname", "name", "gender", "birthday", "region", "notes", "avatar_url", "phone")
OWN_PROFILE_FIELDS = ("nickname", "name", "gender", "birthday", "region", "avatar_url")


def _valid_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID


# ---------------------------------------------------------------- timeline


def add_timeline(session: Session, *, merchant_id: int, customer_id: int, kind: str, text: str = "",
                 details: dict[str, Any] | None = None, actor: Principal | None = None) -> CustomerTimeline:
    """Write one line of a customer's timeline (any domain may: an order paid, a coupon used …)."""
    row = CustomerTimeline(
        merchant_id=merchant_id, customer_id=customer_id, kind=kind[:40], text=text[:500], details=details or {},
        actor_type=actor.kind if actor else "system", actor_id=actor.subject_id if actor else None,
        actor_name=(actor.name if actor else "")[:60],
    )
    session.add(row)
    session.flush()
    return row


def timeline(session: Session, *, customer: Customer, limit: int = 50) -> list[CustomerTimeline]:
    return list(session.scalars(
        select(CustomerTimeline)
        .where(CustomerTimeline.merchant_id == customer.merchant_id, CustomerTimeline.customer_id == customer.id)
        .order_by(CustomerTimeline.id.desc()).limit(limit)
    ))


# ---------------------------------------------------------------- customers and identities


def get_customer(session: Session, customer_id: int, *, actor: Principal, lock: bool = False) -> Customer:
    """A customer inside the actor's scope, else NotFound (merged-away customers included)."""
    if not _valid_id(customer_id):
        raise NotFound()
    return get_scoped(session, Customer, customer_id, actor, lock=lock)


def lock_for_order(session: Session, *, merchant_id: int, customer_id: int) -> None:
    """Serialise this customer's concurrent order transactions from here on (a per-customer limit counted
    after it holds). FOR NO KEY UPDATE: the orders being written already hold a key-share lock on the
    customer's row (their foreign key), which FOR UPDATE would conflict with and deadlock on; SQLite
    serialises writers anyway."""
    if _valid_id(customer_id):
        session.execute(select(Customer.id).where(Customer.id == customer_id, Customer.merchant_id == merchant_id)
                        .with_for_update(key_share=True))


def assignment_of(session: Session, *, merchant_id: int, customer_id: int) -> tuple[int | None, int | None]:
    """The customer's (owner_id, store_id), in one column query (no ORM object): what an order
    records about who serves the customer. NotFound outside the merchant."""
    if not _valid_id(customer_id):
        raise NotFound()
    row = execute_core(session, _assignment_of(), {"merchant_id": merchant_id, "customer_id": customer_id}).first()
    if row is None:
        raise NotFound()
    return row[0], row[1]


@functools.cache
def _assignment_of() -> Any:
    # Built once (every order asks): the system scope (`scoped` with `system_principal`, the merchant's
    # rows) and the ids as parameters.
    return select(Customer.owner_id, Customer.store_id).where(
        Customer.id == bindparam("customer_id"), Customer.merchant_id == bindparam("merchant_id"))


def resolve_merged(session: Session, customer: Customer) -> Customer:
    """Follow merged_into_id to the customer that lives on."""
    seen = set()
    while customer.merged_into_id is not None and customer.id not in seen:
        seen.add(customer.id)
        nxt = session.get(Customer, customer.merged_into_id)
        if nxt is None:
            break
        customer = nxt
    return customer


def _check_identity(kind: str, value: str) -> str:
    if kind not in IDENTITY_KINDS:
        raise field_error("kind", "Unknown identity kind.")
    value = (value or "").strip()
    if kind == "phone":
        value = normalise_phone(value)
    if not 0 < len(value) <= 128:
        raise field_error("value", "Enter 1 to 128 characters.")
    return value


def normalise_phone(value: str) -> str:
    """Digits (and a leading +) only; raises a field error when it is not a phone number."""
    cleaned = re.sub(r"[\s\-()]", "", value or "")
    if not PHONE_RE.match(cleaned):
        raise field_error("phone", "Enter a valid phone number.")
    return cleaned


def find_by_identity(session: Session, *, merchant_id: int, kind: str, value: str) -> Customer | None:
    """The (live) customer holding an identity; a merged customer's identity resolves to the target."""
    row = session.scalars(select(Customer).join(CustomerIdentity, CustomerIdentity.customer_id == Customer.id).where(
        CustomerIdentity.merchant_id == merchant_id, CustomerIdentity.kind == kind, CustomerIdentity.value == value,
    )).first()
    return resolve_merged(session, row) if row is not None else None


def find_or_create_by_identity(session: Session, *, merchant_id: int, kind: str, value: str,
                               nickname: str | None = None, actor: Principal | None = None) -> tuple[Customer, bool]:
    """The customer with this identity, creating one (with the identity) when none has it.
    Safe against a concurrent first login: the unique identity decides who created it."""
    value = _check_identity(kind, value)
    found = find_by_identity(session, merchant_id=merchant_id, kind=kind, value=value)
    if found is not None:
        return found, False
    customer = Customer(merchant_id=merchant_id, nickname=(nickname or "").strip()[:64] or _("Customer"),
                        phone=value if kind == "phone" else "")
    try:
        with session.begin_nested():
            session.add(customer)
            session.flush()
            session.add(CustomerIdentity(merchant_id=merchant_id, customer_id=customer.id, kind=kind, value=value))
            session.flush()
    except IntegrityError:
        found = find_by_identity(session, merchant_id=merchant_id, kind=kind, value=value)
        if found is None:
            raise
        return found, False
    add_timeline(session, merchant_id=merchant_id, customer_id=customer.id, kind="created",
                 text=_("Customer created"), details={"identity_kind": kind}, actor=actor)
    emit(session, events.CUSTOMER_CREATED, events.CustomerCreated(customer_id=customer.id, identity_kind=kind),
         merchant_id=merchant_id)
    return customer, True


def identities(session: Session, *, customer: Customer) -> list[CustomerIdentity]:
    return list(session.scalars(select(CustomerIdentity).where(
        CustomerIdentity.merchant_id == customer.merchant_id, CustomerIdentity.customer_id == customer.id,
    ).order_by(CustomerIdentity.id)))


def bind_identity(session: Session, *, merchant_id: int, customer_id: int, kind: str, value: str,
                  actor: Principal | None = None) -> Customer:
    """Give a customer one more identity. When another customer already holds it, the two are the
    same person: they are merged (into the older one), and the surviving customer is returned."""
    value = _check_identity(kind, value)
    customer = session.get(Customer, customer_id)
    if customer is None or customer.merchant_id != merchant_id:
        raise NotFound()
    customer = resolve_merged(session, customer)
    holder = find_by_identity(session, merchant_id=merchant_id, kind=kind, value=value)
    if holder is not None and holder.id == customer.id:
        return customer
    if holder is not None:
        source, target = (customer, holder) if holder.id < customer.id else (holder, customer)
        return merge_customers(session, source_id=source.id, target_id=target.id,
                               actor=actor if actor and actor.kind == "system" else system_principal(merchant_id))
    session.add(CustomerIdentity(merchant_id=merchant_id, customer_id=customer.id, kind=kind, value=value))
    if kind == "phone" and not customer.phone:
        customer.phone = value
    session.flush()
    add_timeline(session, merchant_id=merchant_id, customer_id=customer.id, kind="identity_added",
                 text=_("Identity added: {kind}", kind=kind), details={"kind": kind}, actor=actor)
    return customer


# ---------------------------------------------------------------- profile


def clean_profile(changes: dict[str, Any], *, allowed: tuple[str, ...] = PROFILE_FIELDS) -> dict[str, Any]:
    """Check profile fields (typed or as typed into a form); raises ValidationFailed naming every
    bad field."""
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    limits = {"nickname": 64, "name": 64, "region": 100, "notes": 2000, "avatar_url": 500}
    for key, value in changes.items():
        if key not in allowed:
            continue
        if key == "birthday":
            if value in (None, ""):
                clean[key] = None
                continue
            if isinstance(value, str):
                try:
                    value = dt.date.fromisoformat(value.strip())
                except ValueError:
                    errors[key] = _("Enter a date like 1990-05-01.")
                    continue
            if not isinstance(value, dt.date) or not dt.date(1900, 1, 1) <= value <= clock.today_local():
                errors[key] = _("Enter a date between 1900 and today.")
                continue
            clean[key] = value
            continue
        if value is None:
            continue
        if not isinstance(value, str):
            errors[key] = _("Not valid.")
            continue
        value = value.strip()
        if key == "gender":
            if value not in GENDERS:
                errors[key] = _("Choose male, female or leave it empty.")
                continue
        elif key == "phone":
            if value:
                try:
                    value = normalise_phone(value)
                except ValidationFailed:
                    errors[key] = _("Enter a valid phone number.")
                    continue
        elif key == "nickname" and not value:
            errors[key] = _("The nickname cannot be empty.")
            continue
        elif key == "avatar_url" and value and not (value.startswith(("https://", "http://", "/media/"))):
            errors[key] = _("Enter a web address starting with https://.")
            continue
        if key in limits and len(value) > limits[key]:
            errors[key] = _("At most {n} characters.", n=limits[key])
            continue
        clean[key] = value
    if errors:
        raise ValidationFailed(details={"fields": errors})
    return clean


def _apply_profile(session: Session, customer: Customer, clean: dict[str, Any], actor: Principal) -> list[str]:
    changed = [k for k, v in clean.items() if getattr(customer, k) != v]
    if "phone" in changed and clean["phone"]:
        other = find_by_identity(session, merchant_id=customer.merchant_id, kind="phone", value=clean["phone"])
        if other is not None and other.id != customer.id:
            raise Conflict("Another customer already has this phone number; merge them instead.",
                           code="phone_taken", details={"fields": {"phone": _("Another customer has this phone.")}})
    for key in changed:
        setattr(customer, key, clean[key])
    if "phone" in changed:
        # The phone identity follows the profile's phone.
        session.execute(delete(CustomerIdentity).where(
            CustomerIdentity.merchant_id == customer.merchant_id, CustomerIdentity.customer_id == customer.id,
            CustomerIdentity.kind == "phone"))
        if customer.phone:
            session.add(CustomerIdentity(merchant_id=customer.merchant_id, customer_id=customer.id, kind="phone",
                                         value=customer.phone))
    session.flush()
    if changed:
        add_timeline(session, merchant_id=customer.merchant_id, customer_id=customer.id, kind="profile_edited",
                     text=_("Profile edited"), details={"fields": sorted(changed)}, actor=actor)
    return changed


def update_profile(session: Session, customer_id: int, *, actor: Principal, **changes: Any) -> Customer:
    """Staff edit a customer's profile and notes (within their scope)."""
    actor.require("customers.manage")
    clean = clean_profile(changes)
    customer = get_customer(session, customer_id, actor=actor)
    if customer.merged_into_id is not None:
        raise Conflict("This customer was merged into another one.", code="customer_merged")
    _apply_profile(session, customer, clean, actor)
    return customer


def own_customer(session: Session, *, actor: Principal) -> Customer:
    """The signed-in customer's own row."""
    customer = session.get(Customer, actor.customer_id or 0)
    if customer is None or customer.merchant_id != actor.merchant_id:
        raise NotFound()
    return customer


def update_own_profile(session: Session, *, actor: Principal, **changes: Any) -> Customer:
    """A signed-in customer edits their own profile (not phone or notes)."""
    clean = clean_profile(changes, allowed=OWN_PROFILE_FIELDS)
    customer = own_customer(session, actor=actor)
    _apply_profile(session, customer, clean, actor)
    return customer


def set_owner(session: Session, *, customer_id: int, owner_id: int | None, store_id: int | None,
              actor: Principal, reason: str = "") -> Customer:
    """Bind a customer to a guide (and the store) or unbind them. The owner's store is used when no
    store is given. Writes a timeline entry and emits `customer.owner_changed`."""
    customer = get_customer(session, customer_id, actor=actor)
    if owner_id is not None:
        owner = merchants.get_staff(session, owner_id, actor=system_principal(customer.merchant_id))
        if not owner.active:
            raise field_error("owner_id", "This staff member is disabled.")
        if store_id is None:
            store_id = owner.store_id
    if store_id is not None:
        merchants.get_store(session, store_id, actor=system_principal(customer.merchant_id))
    before = {"owner_id": customer.owner_id, "store_id": customer.store_id}
    if before == {"owner_id": owner_id, "store_id": store_id}:
        return customer
    customer.owner_id, customer.store_id = owner_id, store_id
    session.flush()
    details = {"from": before, "to": {"owner_id": owner_id, "store_id": store_id}, "reason": reason[:200]}
    add_timeline(session, merchant_id=customer.merchant_id, customer_id=customer.id, kind="owner_changed",
                 text=_("Owner changed"), details=details, actor=actor)
    emit(session, events.CUSTOMER_OWNER_CHANGED, events.CustomerOwnerChanged(
        customer_id=customer.id, owner_id=owner_id, store_id=store_id, previous_owner_id=before["owner_id"],
        previous_store_id=before["store_id"], reason=reason[:200]), merchant_id=customer.merchant_id)
    return customer


# ---------------------------------------------------------------- tags


def list_tag_groups(session: Session, *, actor: Principal) -> list[tuple[TagGroup, list[Tag]]]:
    groups = list(session.scalars(select(TagGroup).where(TagGroup.merchant_id == actor.merchant_id)
                                  .order_by(TagGroup.position, TagGroup.id)))
    tags = session.scalars(select(Tag).where(Tag.merchant_id == actor.merchant_id).order_by(Tag.id))
    by_group: dict[int, list[Tag]] = defaultdict(list)
    for tag in tags:
        by_group[tag.group_id].append(tag)
    return [(g, by_group.get(g.id, [])) for g in groups]


def create_tag_group(session: Session, *, actor: Principal, name: str) -> TagGroup:
    actor.require("customers.tags_manage")
    name = (name or "").strip()
    if not 0 < len(name) <= 40:
        raise field_error("name", "Enter 1 to 40 characters.")
    if session.scalar(select(TagGroup.id).where(TagGroup.merchant_id == actor.merchant_id, TagGroup.name == name)):
        raise field_error("name", "A tag group with this name already exists.")
    count = session.scalar(select(func.count()).select_from(TagGroup).where(TagGroup.merchant_id == actor.merchant_id))
    group = TagGroup(merchant_id=actor.merchant_id, name=name, position=count or 0)
    session.add(group)
    session.flush()
    return group


def get_tag_group(session: Session, group_id: int, *, actor: Principal) -> TagGroup:
    if not _valid_id(group_id):
        raise NotFound()
    return get_scoped(session, TagGroup, group_id, actor)


def create_tag(session: Session, *, actor: Principal, group_id: int, name: str) -> Tag:
    actor.require("customers.tags_manage")
    name = (name or "").strip()
    if not 0 < len(name) <= 40:
        raise field_error("name", "Enter 1 to 40 characters.")
    try:
        group = get_tag_group(session, group_id, actor=actor)
    except NotFound as exc:
        raise field_error("group_id", "Choose a tag group.") from exc
    if session.scalar(select(Tag.id).where(Tag.merchant_id == actor.merchant_id, Tag.group_id == group.id, Tag.name == name)):
        raise field_error("name", "This group already has a tag with this name.")
    tag = Tag(merchant_id=actor.merchant_id, group_id=group.id, name=name)
    session.add(tag)
    session.flush()
    return tag


def get_tag(session: Session, tag_id: int, *, actor: Principal) -> Tag:
    if not _valid_id(tag_id):
        raise NotFound()
    return get_scoped(session, Tag, tag_id, actor)


def _tags_by_ids(session: Session, tag_ids: list[int], *, actor: Principal) -> list[Tag]:
    ids = sorted({t for t in tag_ids if _valid_id(t)})
    tags = list(session.scalars(select(Tag).where(Tag.merchant_id == actor.merchant_id, Tag.id.in_(ids)))) if ids else []
    if len(tags) != len(set(tag_ids)):
        raise NotFound("Some tags do not exist.", code="tag_not_found")
    return tags


def tags_of(session: Session, *, merchant_id: int, customer_ids: list[int]) -> dict[int, list[Tag]]:
    """Each customer's tags (for a page of customers, in one query)."""
    if not customer_ids:
        return {}
    rows = session.execute(
        select(CustomerTag.customer_id, Tag).join(Tag, Tag.id == CustomerTag.tag_id)
        .where(CustomerTag.merchant_id == merchant_id, CustomerTag.customer_id.in_(customer_ids))
        .order_by(Tag.group_id, Tag.id)
    )
    result: dict[int, list[Tag]] = defaultdict(list)
    for customer_id, tag in rows:
        result[customer_id].append(tag)
    return result


def _link_tags(session: Session, customer: Customer, tags: list[Tag], actor: Principal) -> list[Tag]:
    have = set(session.scalars(select(CustomerTag.tag_id).where(CustomerTag.customer_id == customer.id)))
    added = [t for t in tags if t.id not in have]
    for tag in added:
        session.add(CustomerTag(merchant_id=customer.merchant_id, customer_id=customer.id, tag_id=tag.id))
    session.flush()
    if added:
        add_timeline(session, merchant_id=customer.merchant_id, customer_id=customer.id, kind="tagged",
                     text=_("Tagged: {tags}", tags=", ".join(t.name for t in added)),
                     details={"tag_ids": [t.id for t in added]}, actor=actor)
    return added


def add_tags(session: Session, customer_id: int, *, tag_ids: list[int], actor: Principal) -> list[Tag]:
    """Put manual tags on a customer; tags already there are left alone. Returns the tags added."""
    actor.require("customers.manage")
    customer = get_customer(session, customer_id, actor=actor)
    if customer.merged_into_id is not None:
        raise Conflict("This customer was merged into another one.", code="customer_merged")
    return _link_tags(session, customer, _tags_by_ids(session, tag_ids, actor=actor), actor)


def remove_tag(session: Session, customer_id: int, *, tag_id: int, actor: Principal) -> None:
    actor.require("customers.manage")
    customer = get_customer(session, customer_id, actor=actor)
    tag = get_tag(session, tag_id, actor=actor)
    result = session.execute(delete(CustomerTag).where(CustomerTag.customer_id == customer.id, CustomerTag.tag_id == tag.id))
    if not result.rowcount:
        raise NotFound("This customer does not have this tag.", code="tag_not_on_customer")
    add_timeline(session, merchant_id=customer.merchant_id, customer_id=customer.id, kind="untagged",
                 text=_("Tag removed: {tag}", tag=tag.name), details={"tag_id": tag.id}, actor=actor)


def bulk_tag(session: Session, *, customer_ids: list[int], tag_ids: list[int], actor: Principal) -> dict[str, int]:
    """Tag many customers at once. Customers outside the actor's scope are counted as not found,
    never tagged. Returns {customers, not_found, added}."""
    actor.require("customers.manage")
    tags = _tags_by_ids(session, tag_ids, actor=actor)
    wanted = sorted({c for c in customer_ids if _valid_id(c)})[:MAX_BULK]
    found = list(session.scalars(scoped(select(Customer), Customer, actor).where(
        Customer.id.in_(wanted), Customer.merged_into_id.is_(None)).order_by(Customer.id))) if wanted else []
    added = 0
    for customer in found:
        added += len(_link_tags(session, customer, tags, actor))
    return {"customers": len(found), "not_found": len(set(customer_ids)) - len(found), "added": added}


# ---------------------------------------------------------------- listing, export


@dataclasses.dataclass
class CustomerFilter:
    q: str = ""
    tag_id: int | None = None
    owner_id: int | None = None
    store_id: int | None = None
    last_purchase_before_days: int | None = None
    last_purchase_within_days: int | None = None
    min_spent_cents: int | None = None
    max_spent_cents: int | None = None
    min_orders: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v not in (None, "")}


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _filtered(actor: Principal, f: CustomerFilter) -> Select[Any]:
    stmt = scoped(select(Customer), Customer, actor).where(Customer.merged_into_id.is_(None))
    q = (f.q or "").strip()[:100]
    if q:
        pattern = _like(q)
        stmt = stmt.where(or_(Customer.nickname.ilike(pattern, escape="\\"), Customer.name.ilike(pattern, escape="\\"),
                              Customer.phone.like(pattern, escape="\\")))
    if f.tag_id is not None:
        stmt = stmt.where(exists().where(CustomerTag.customer_id == Customer.id, CustomerTag.tag_id == f.tag_id))
    if f.owner_id is not None:
        stmt = stmt.where(Customer.owner_id == f.owner_id)
    if f.store_id is not None:
        stmt = stmt.where(Customer.store_id == f.store_id)
    now = clock.now()
    if f.last_purchase_before_days is not None:
        stmt = stmt.where(Customer.last_purchase_at < now - dt.timedelta(days=f.last_purchase_before_days))
    if f.last_purchase_within_days is not None:
        stmt = stmt.where(Customer.last_purchase_at >= now - dt.timedelta(days=f.last_purchase_within_days))
    if f.min_spent_cents is not None:
        stmt = stmt.where(Customer.total_spent_cents >= f.min_spent_cents)
    if f.max_spent_cents is not None:
        stmt = stmt.where(Customer.total_spent_cents <= f.max_spent_cents)
    if f.min_orders is not None:
        stmt = stmt.where(Customer.paid_orders >= f.min_orders)
    return stmt


def list_customers(session: Session, *, actor: Principal, filters: CustomerFilter | None = None,
                   cursor: str | None = None, limit: int | None = None) -> Page[Customer]:
    """Live (not merged-away) customers in the actor's scope, newest first, filtered."""
    return paginate(session, _filtered(actor, filters or CustomerFilter()), Customer.id, cursor=cursor, limit=limit)


def may_see_phone(actor: Principal) -> bool:
    return actor.kind == "system" or (actor.is_staff and actor.can("customers.view_phone"))


def audit_phone_view(session: Session, *, actor: Principal, customers: list[Customer]) -> None:
    """One audit row per response that shows unmasked phones."""
    ids = [c.id for c in customers if c.phone]
    if ids and actor.is_staff:
        audit.record(session, actor=actor, action="customers.phone_view", target_type="customer",
                     target_id=ids[0] if len(ids) == 1 else None, details={"customer_ids": ids})


def summaries(session: Session, customers: list[Customer], *, actor: Principal, unmask: bool) -> list[dict[str, Any]]:
    """What lists show of each customer: tags, owner and store names, stats; phone masked unless
    `unmask` (the caller audits an unmasked view)."""
    merchant_id = actor.merchant_id
    tags = tags_of(session, merchant_id=merchant_id, customer_ids=[c.id for c in customers])
    owner_names = merchants.staff_names(session, merchant_id, [c.owner_id for c in customers if c.owner_id])
    store_names = store_names_of(session, merchant_id, [c.store_id for c in customers if c.store_id])
    return [{
        "id": c.id, "nickname": c.nickname, "phone": c.phone if unmask else mask_phone(c.phone),
        "owner_id": c.owner_id, "owner_name": owner_names.get(c.owner_id or 0, ""),
        "store_id": c.store_id, "store_name": store_names.get(c.store_id or 0, ""),
        "tags": [{"id": t.id, "name": t.name} for t in tags.get(c.id, [])],
        "stats": stats_of(c), "created_at": c.created_at,
    } for c in customers]


def nicknames_of(session: Session, merchant_id: int, ids: list[int]) -> dict[int, str]:
    """Customer id -> nickname, for lists that name many customers (leaderboards, fission trees)."""
    wanted = {i for i in ids if isinstance(i, int)}
    if not wanted:
        return {}
    rows = session.execute(select(Customer.id, Customer.nickname).where(Customer.merchant_id == merchant_id,
                                                                       Customer.id.in_(wanted)))
    return {i: n for i, n in rows}


def store_names_of(session: Session, merchant_id: int, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    stores = merchants.list_stores(session, actor=system_principal(merchant_id))
    return {s.id: s.name for s in stores if s.id in set(ids)}


def stats_of(c: Customer) -> dict[str, Any]:
    return {"paid_orders": c.paid_orders, "total_spent_cents": c.total_spent_cents,
            "last_purchase_at": c.last_purchase_at, "last_order_cents": c.last_order_cents,
            "max_order_cents": c.max_order_cents, "first_purchase_at": c.first_purchase_at,
            "refunded_cents": c.refunded_cents}


def mask_identity(kind: str, value: str) -> str:
    if kind == "phone":
        return mask_phone(value)
    if len(value) <= 8:
        return value[:2] + "*" * (len(value) - 2)
    return value[:4] + "****" + value[-4:]


EXPORT_COLUMNS = ("id", "nickname", "name", "phone", "gender", "region", "owner", "store", "tags", "paid_orders",
                  "total_spent_yuan", "last_purchase_at", "created_at")


def export_rows(session: Session, *, actor: Principal, filters: CustomerFilter) -> list[list[str]]:
    """Every customer the filters select, as CSV rows (header first). Phones are masked unless the
    role may export them. The export itself is audited with the filters and the row count."""
    from siyu.core.money import cents_to_yuan_str

    actor.require("customers.export")
    unmask = actor.can("customers.export_phone")
    rows: list[list[str]] = [list(EXPORT_COLUMNS)]
    last_id: int | None = None
    while len(rows) <= EXPORT_MAX_ROWS:
        stmt = _filtered(actor, filters)
        if last_id is not None:
            stmt = stmt.where(Customer.id < last_id)
        batch = list(session.scalars(stmt.order_by(Customer.id.desc()).limit(1000)))
        if not batch:
            break
        for item, c in zip(summaries(session, batch, actor=actor, unmask=unmask), batch, strict=True):
            s = item["stats"]
            rows.append([str(c.id), c.nickname, c.name, item["phone"], c.gender, c.region, item["owner_name"],
                         item["store_name"], " ".join(t["name"] for t in item["tags"]), str(s["paid_orders"]),
                         cents_to_yuan_str(s["total_spent_cents"]), clock.format_local(c.last_purchase_at, "%Y-%m-%d %H:%M")
                         if c.last_purchase_at else "", clock.format_local(c.created_at, "%Y-%m-%d %H:%M")])
        last_id = batch[-1].id
    audit.record(session, actor=actor, action="customers.export", target_type="customer",
                 details={"filters": filters.as_dict(), "rows": len(rows) - 1, "phones_unmasked": unmask})
    return rows


def iter_csv(rows: list[list[str]]) -> Iterator[str]:
    """CSV text with a UTF-8 BOM so that Excel opens Chinese text correctly."""
    import csv
    import io

    yield "\ufeff"
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for i in range(0, len(rows), 500):
        for row in rows[i:i + 500]:
            # Cells starting with = + - @ would be formulas in Excel.
            writer.writerow(["'" + v if v[:1] in ("=", "+", "-", "@") else v for v in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


# ---------------------------------------------------------------- stats


def _stat_change(session: Session, *, merchant_id: int, customer_id: int, order_id: int, kind: str, ref_id: int,
                 amount_cents: int, at: dt.datetime) -> int | None:
    """Record that a change was applied: the id of the customer to count it on (merges followed);
    None when it already was. NotFound when the customer is not the merchant's."""
    if not _valid_id(order_id) or amount_cents < 0 or at.tzinfo is None:
        raise ValueError("order_id must be a positive id, amount_cents >= 0 and the time aware")
    if not _valid_id(customer_id):
        raise NotFound()
    # Columns only (no ORM object): the merchant and the merge chain, as resolve_merged follows it.
    row = session.execute(select(Customer.merchant_id, Customer.merged_into_id).where(Customer.id == customer_id)
                          ).first()
    if row is None or row.merchant_id != merchant_id:
        raise NotFound()
    target, merged_into, seen = customer_id, row.merged_into_id, set()
    while merged_into is not None and target not in seen:
        seen.add(target)
        nxt = session.execute(select(Customer.merged_into_id).where(Customer.id == merged_into)).first()
        if nxt is None:
            break
        target, merged_into = merged_into, nxt.merged_into_id
    # One INSERT … ON CONFLICT DO NOTHING on (merchant, order, kind, ref): no row back = already applied.
    insert_ = upsert_insert(session)
    changes = CustomerStatChange.__table__
    inserted = session.connection().execute(
        insert_(changes)
        .values(merchant_id=merchant_id, customer_id=target, order_id=order_id, kind=kind, ref_id=ref_id,
                amount_cents=amount_cents, happened_at=at, created_at=clock.now())
        .on_conflict_do_nothing(index_elements=["merchant_id", "order_id", "kind", "ref_id"])
        .returning(changes.c.id)
    ).first()
    if inserted is None:
        return None
    return target


def _expire_loaded(session: Session, customer_id: int) -> None:
    """A Core UPDATE changed the customer's row: a copy the session holds must be read again."""
    loaded = session.identity_map.get(identity_key(Customer, customer_id))
    if loaded is not None:
        session.expire(loaded)


# record_paid_order's common case (a live customer: no merge to follow) on PostgreSQL in one statement: the
# customer checked, the change recorded (ON CONFLICT: once per order) and the stats bumped; `live` 0 sends
# the caller the long way (a merged or unknown customer). A fixed text, compiled once. SQLite has no
# data-modifying CTE: the check and the record are one INSERT … SELECT there, the UPDATE a second statement.
_PAID_BUMP = """
    first_purchase_at = CASE WHEN first_purchase_at IS NULL OR first_purchase_at > :at THEN :at
                             ELSE first_purchase_at END,
    last_purchase_at = CASE WHEN last_purchase_at IS NULL OR last_purchase_at <= :at THEN :at
                            ELSE last_purchase_at END,
    last_order_cents = CASE WHEN last_purchase_at IS NULL OR last_purchase_at <= :at THEN :amount
                            ELSE last_order_cents END,
    max_order_cents = CASE WHEN max_order_cents < :amount THEN :amount ELSE max_order_cents END"""
_PAID_RECORD = """
    INSERT INTO customer_stat_changes (merchant_id, customer_id, order_id, kind, ref_id, amount_cents, happened_at,
                                       created_at)
    SELECT :merchant_id, c.id, :order_id, 'paid', 0, :amount, :at, :now FROM customers AS c
    WHERE c.id = :customer_id AND c.merchant_id = :merchant_id AND c.merged_into_id IS NULL
    ON CONFLICT (merchant_id, order_id, kind, ref_id) DO NOTHING RETURNING customer_id"""
_PAID_SQL = {
    "postgresql": f"""
        WITH live AS (SELECT id FROM customers
                      WHERE id = :customer_id AND merchant_id = :merchant_id AND merged_into_id IS NULL),
        counted AS ({_PAID_RECORD}),
        bumped AS (
            UPDATE customers SET updated_at = :now, paid_orders = paid_orders + 1,
                total_spent_cents = total_spent_cents + :amount, {_PAID_BUMP}
            FROM counted WHERE customers.id = counted.customer_id RETURNING customers.id)
        SELECT (SELECT count(*) FROM live) AS live, (SELECT count(*) FROM bumped) AS bumped""",
    "sqlite": _PAID_RECORD,
}
_PAID_STATEMENTS = {
    dialect: text(sql).bindparams(
        bindparam("at", type_=UTCDateTime()), bindparam("now", type_=UTCDateTime()),
        bindparam("merchant_id", type_=BigInteger()), bindparam("customer_id", type_=BigInteger()),
        bindparam("order_id", type_=BigInteger()), bindparam("amount", type_=BigInteger()))
    for dialect, sql in _PAID_SQL.items()
}


def _record_paid_fast(session: Session, *, merchant_id: int, customer_id: int, order_id: int, amount_cents: int,
                      paid_at: dt.datetime) -> bool | None:
    """record_paid_order for a live customer (see `_PAID_SQL`); None: not a live customer of the
    merchant (merged, unknown) or, on SQLite, maybe already counted: the long way decides."""
    if not _valid_id(order_id) or not _valid_id(customer_id) or amount_cents < 0 or paid_at.tzinfo is None:
        return None  # the long way raises
    session.flush()
    dialect = session.get_bind().dialect.name
    if dialect not in _PAID_STATEMENTS:
        return None
    params = {"merchant_id": merchant_id, "customer_id": customer_id, "order_id": order_id, "amount": amount_cents,
              "at": paid_at, "now": clock.now()}
    row = session.connection().execute(_PAID_STATEMENTS[dialect], params).first()
    if dialect == "postgresql":
        assert row is not None
        if not row.live:
            return None
        if not row.bumped:
            return False
    elif row is None:
        return None
    else:
        session.connection().execute(
            update(Customer).where(Customer.id == customer_id, Customer.merchant_id == merchant_id).values(
                **_paid_order_values(paid_at, amount_cents)).execution_options(synchronize_session=False))
    _expire_loaded(session, customer_id)
    return True


def record_paid_order(session: Session, *, merchant_id: int, customer_id: int, order_id: int, amount_cents: int,
                      paid_at: dt.datetime) -> bool:
    """Count a paid order in the customer's stats (one statement on PostgreSQL, two on SQLite for a live
    customer). Idempotent per order: True when applied, False when this order was already counted."""
    fast = _record_paid_fast(session, merchant_id=merchant_id, customer_id=customer_id, order_id=order_id,
                             amount_cents=amount_cents, paid_at=paid_at)
    if fast is not None:
        return fast
    target = _stat_change(session, merchant_id=merchant_id, customer_id=customer_id, order_id=order_id,
                          kind="paid", ref_id=0, amount_cents=amount_cents, at=paid_at)
    if target is None:
        return False
    session.connection().execute(
        update(Customer).where(Customer.id == target, Customer.merchant_id == merchant_id).values(
            **_paid_order_values(paid_at, amount_cents)).execution_options(synchronize_session=False))
    _expire_loaded(session, target)
    return True


def _paid_order_values(paid_at: dt.datetime, amount_cents: int) -> dict[str, Any]:
    """The customer-row changes of one more paid order (an UPDATE's values): count, spend, first and last
    purchase, last and largest order."""
    at = literal(paid_at, UTCDateTime())
    amount = literal(amount_cents)
    is_latest = or_(Customer.last_purchase_at.is_(None), Customer.last_purchase_at <= at)
    return {
        "paid_orders": Customer.paid_orders + 1,
        "total_spent_cents": Customer.total_spent_cents + amount,
        "first_purchase_at": case((or_(Customer.first_purchase_at.is_(None), Customer.first_purchase_at > at), at),
                                  else_=Customer.first_purchase_at),
        "last_purchase_at": case((is_latest, at), else_=Customer.last_purchase_at),
        "last_order_cents": case((is_latest, amount), else_=Customer.last_order_cents),
        "max_order_cents": case((Customer.max_order_cents < amount, amount), else_=Customer.max_order_cents),
    }


def record_refund(session: Session, *, merchant_id: int, customer_id: int, order_id: int, amount_cents: int,
                  refunded_at: dt.datetime, refund_id: int | None = None) -> bool:
    """Take a refund off the customer's net spend (one UPDATE). Idempotent per order, or per
    refund when an order has several (pass `refund_id`)."""
    target = _stat_change(session, merchant_id=merchant_id, customer_id=customer_id, order_id=order_id,
                          kind="refund", ref_id=refund_id or 0, amount_cents=amount_cents, at=refunded_at)
    if target is None:
        return False
    session.execute(
        update(Customer).where(Customer.id == target, Customer.merchant_id == merchant_id).values(
            total_spent_cents=Customer.total_spent_cents - amount_cents,
            refunded_cents=Customer.refunded_cents + amount_cents,
        ).execution_options(synchronize_session=False)
    )
    _expire_loaded(session, target)
    return True


STAT_FIELDS = ("paid_orders", "total_spent_cents", "refunded_cents", "first_purchase_at", "last_purchase_at",
               "last_order_cents", "max_order_cents")


def bulk_set_stats(session: Session, *, merchant_id: int, stats: dict[int, dict[str, Any]],
                   changes: list[dict[str, Any]] | None = None) -> int:
    """Set (overwrite, not add to) the purchase stats of many customers at once, for data written in
    bulk such as the demo's year of orders. `stats`: customer id -> the STAT_FIELDS; `changes`: the
    paid orders and refunds those stats already include (`customer_id, order_id, kind, ref_id,
    amount_cents, happened_at`), recorded so that record_paid_order / record_refund for them later
    are no-ops. Every customer must be the merchant's (NotFound otherwise). Returns the number set."""
    ids = list(stats)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        found = session.scalar(select(func.count()).select_from(Customer).where(
            Customer.merchant_id == merchant_id, Customer.id.in_(chunk)))
        if found != len(set(chunk)):
            raise NotFound()
    now = clock.now()
    rows = [{"id": cid, **{f: values[f] for f in STAT_FIELDS}, "updated_at": values.get("updated_at", now)}
            for cid, values in stats.items()]
    if rows:
        session.execute(update(Customer).execution_options(synchronize_session=False), rows)
    if changes:
        session.execute(insert(CustomerStatChange.__table__), [
            {"merchant_id": merchant_id, "customer_id": c["customer_id"], "order_id": c["order_id"], "kind": c["kind"],
             "ref_id": c.get("ref_id", 0), "amount_cents": c["amount_cents"], "happened_at": c["happened_at"],
             "created_at": c.get("created_at", c["happened_at"])} for c in changes])
    return len(rows)


# ---------------------------------------------------------------- merge


def merge_customers(session: Session, *, source_id: int, target_id: int, actor: Principal) -> Customer:
    """Merge `source` into `target` (the same person seen twice): identities, tags, stats, tokens
    and timeline move to the target; blank profile fields are filled from the source; notes are
    kept. The source stays, marked merged. Emits `customer.merged` so other domains move their rows."""
    actor.require("customers.merge")
    if source_id == target_id:
        raise Conflict("A customer cannot be merged into itself.", code="merge_same_customer")
    first, second = sorted((source_id, target_id))
    # Lock both rows in id order.
    locked = {c.id: c for c in (get_customer(session, first, actor=actor, lock=True),
                                get_customer(session, second, actor=actor, lock=True))}
    source, target = locked[source_id], locked[target_id]
    if source.merged_into_id is not None or target.merged_into_id is not None:
        raise Conflict("This customer was merged into another one.", code="customer_merged")
    mid = target.merchant_id

    session.execute(update(CustomerIdentity).where(CustomerIdentity.customer_id == source.id)
                    .values(customer_id=target.id))
    target_tags = select(CustomerTag.tag_id).where(CustomerTag.customer_id == target.id).scalar_subquery()
    session.execute(update(CustomerTag).where(CustomerTag.customer_id == source.id, CustomerTag.tag_id.not_in(target_tags))
                    .values(customer_id=target.id))
    session.execute(delete(CustomerTag).where(CustomerTag.customer_id == source.id))
    for model in (CustomerStatChange, CustomerToken, CustomerTimeline):
        session.execute(update(model).where(model.customer_id == source.id).values(customer_id=target.id)
                        )
    # Customers merged into the source earlier now point at the target.
    session.execute(update(Customer).where(Customer.merged_into_id == source.id).values(merged_into_id=target.id)
                    )

    # Stats: sums, earliest first purchase, latest last purchase (and its amount), largest order.
    if source.last_purchase_at is not None and (target.last_purchase_at is None or source.last_purchase_at > target.last_purchase_at):
        target.last_purchase_at, target.last_order_cents = source.last_purchase_at, source.last_order_cents
    firsts = [t for t in (source.first_purchase_at, target.first_purchase_at) if t is not None]
    target.first_purchase_at = min(firsts) if firsts else None
    target.max_order_cents = max(source.max_order_cents, target.max_order_cents)
    target.paid_orders += source.paid_orders
    target.total_spent_cents += source.total_spent_cents
    target.refunded_cents += source.refunded_cents
    source.paid_orders = source.total_spent_cents = source.refunded_cents = 0
    source.last_order_cents = source.max_order_cents = 0
    source.first_purchase_at = source.last_purchase_at = None

    for key in ("nickname", "name", "gender", "birthday", "region", "avatar_url", "phone"):
        if not getattr(target, key) and getattr(source, key):
            setattr(target, key, getattr(source, key))
    if source.notes:
        target.notes = (target.notes + "\n" + source.notes).strip() if target.notes else source.notes
    if target.owner_id is None and source.owner_id is not None:
        target.owner_id, target.store_id = source.owner_id, source.store_id
    elif target.store_id is None:
        target.store_id = source.store_id
    source.merged_into_id, source.merged_at = target.id, clock.now()
    session.flush()

    add_timeline(session, merchant_id=mid, customer_id=target.id, kind="merged",
                 text=_("Customer #{source} merged into this one", source=source.id),
                 details={"source_id": source.id, "target_id": target.id}, actor=actor)
    add_timeline(session, merchant_id=mid, customer_id=source.id, kind="merged",
                 text=_("Merged into customer #{target}", target=target.id),
                 details={"source_id": source.id, "target_id": target.id}, actor=actor)
    emit(session, events.CUSTOMER_MERGED, events.CustomerMerged(source_id=source.id, target_id=target.id), merchant_id=mid)
    session.expire(target)
    return target


# ---------------------------------------------------------------- dashboard figures


def _as_range(start: dt.datetime | dt.date, end: dt.datetime | dt.date) -> tuple[dt.datetime, dt.datetime]:
    if not isinstance(start, dt.datetime):
        start = clock.local_day_bounds(start)[0]
    if not isinstance(end, dt.datetime):
        end = clock.local_day_bounds(end)[0]
    return start, end


def _created_in(merchant_id: int, start: dt.datetime, end: dt.datetime, actor: Principal | None, what: Any) -> Select[Any]:
    stmt = select(what).select_from(Customer).where(
        Customer.merchant_id == merchant_id, Customer.merged_into_id.is_(None),
        Customer.created_at >= start, Customer.created_at < end)
    if actor is not None:
        if actor.merchant_id != merchant_id:
            raise NotFound()
        stmt = scoped(stmt, Customer, actor)
    return stmt


def count_new_customers(session: Session, *, merchant_id: int, start: dt.datetime | dt.date,
                        end: dt.datetime | dt.date, actor: Principal | None = None) -> int:
    """Customers created in [start, end) (dates are Shanghai days; merged-away ones not counted),
    merchant-wide, or only those in `actor`'s scope when given (a guide: their own)."""
    start, end = _as_range(start, end)
    return session.scalar(_created_in(merchant_id, start, end, actor, func.count())) or 0


def new_customers_by_day(session: Session, *, merchant_id: int, start: dt.datetime | dt.date,
                         end: dt.datetime | dt.date, actor: Principal | None = None) -> list[tuple[dt.date, int]]:
    """New customers per Shanghai day in [start, end), every day listed (zeros included); counted
    in Python so it works the same on both databases. `actor` limits it to their scope."""
    start, end = _as_range(start, end)
    counts: dict[dt.date, int] = defaultdict(int)
    for (created,) in session.execute(_created_in(merchant_id, start, end, actor, Customer.created_at)):
        counts[created.astimezone(clock.SHANGHAI).date()] += 1
    if end <= start:
        return []
    first = start.astimezone(clock.SHANGHAI).date()
    last = (end - dt.timedelta(microseconds=1)).astimezone(clock.SHANGHAI).date()
    return [(first + dt.timedelta(days=i), counts.get(first + dt.timedelta(days=i), 0))
            for i in range((last - first).days + 1)]


def customer_facts(session: Session, *, actor: Principal, store_id: int | None = None,
                   owner_id: int | None = None) -> Iterator[tuple[int, int | None, int | None, dt.datetime]]:
    """(id, owner_id, store_id, created_at) of every live customer in the actor's scope, as plain
    tuples for analytics scans (no ORM objects)."""
    stmt = scoped(select(Customer.id, Customer.owner_id, Customer.store_id, Customer.created_at), Customer, actor).where(
        Customer.merged_into_id.is_(None))
    if store_id is not None:
        stmt = stmt.where(Customer.store_id == store_id)
    if owner_id is not None:
        stmt = stmt.where(Customer.owner_id == owner_id)
    for r in session.execute(stmt.execution_options(yield_per=50_000)):
        yield int(r[0]), r[1], r[2], r[3]


def scoped_ids(*, actor: Principal, store_id: int | None = None, owner_id: int | None = None) -> Select[Any]:
    """A SELECT of the ids of the live customers `customer_facts` yields, for analytics to use as a
    subquery (`customer_id IN (...)`) rather than loading every id into Python."""
    stmt = scoped(select(Customer.id), Customer, actor).where(Customer.merged_into_id.is_(None))
    if store_id is not None:
        stmt = stmt.where(Customer.store_id == store_id)
    if owner_id is not None:
        stmt = stmt.where(Customer.owner_id == owner_id)
    return stmt


def owner_counts(session: Session, *, merchant_id: int, owner_ids: list[int], since: dt.datetime,
                 until: dt.datetime) -> dict[int, tuple[int, int]]:
    """{owner id: (live customers they own, of them created in [since, until))} for the given owners,
    counted in the database (one row per owner, not per customer)."""
    if not owner_ids:
        return {}
    new = func.sum(case((Customer.created_at >= since, case((Customer.created_at < until, 1), else_=0)), else_=0))
    stmt = select(Customer.owner_id, func.count(), new).where(
        Customer.merchant_id == merchant_id, Customer.merged_into_id.is_(None),
        Customer.owner_id.in_(owner_ids)).group_by(Customer.owner_id)
    return {int(o): (int(n), int(k or 0)) for o, n, k in session.execute(stmt)}


def owned_select(*, merchant_id: int, owner_ids: list[int]) -> Select[Any]:
    """A SELECT of (customer_id, owner_id) of the live customers the given owners own, for analytics to
    join its per-customer rows to in the database."""
    return select(Customer.id.label("customer_id"), Customer.owner_id.label("owner_id")).where(
        Customer.merchant_id == merchant_id, Customer.merged_into_id.is_(None), Customer.owner_id.in_(owner_ids))


def customers_by_ids(session: Session, *, actor: Principal, ids: list[int]) -> list[Customer]:
    """The live customers among `ids` that the actor may see, in the order of `ids`."""
    found: dict[int, Customer] = {}
    for i in range(0, len(ids), 1000):
        chunk = ids[i:i + 1000]
        stmt = scoped(select(Customer), Customer, actor).where(Customer.id.in_(chunk), Customer.merged_into_id.is_(None))
        found.update({c.id: c for c in session.scalars(stmt)})
    return [found[i] for i in ids if i in found]


def contacts_by_ids(session: Session, *, actor: Principal, ids: list[int], unmask: bool
                    ) -> dict[int, tuple[str, str, str, str]]:
    """{id: (nickname, phone, owner name, store name)} of the live customers among `ids` that the actor may
    see, for exports of many customers (`summaries` without tags, stats or ORM objects); phones masked
    unless `unmask` (the caller audits an unmasked export)."""
    merchant_id = actor.merchant_id
    rows: list[tuple[int, str, str | None, int | None, int | None]] = []
    for i in range(0, len(ids), 1000):
        stmt = scoped(select(Customer.id, Customer.nickname, Customer.phone, Customer.owner_id, Customer.store_id),
                      Customer, actor).where(Customer.id.in_(ids[i:i + 1000]), Customer.merged_into_id.is_(None))
        rows.extend(session.execute(stmt).tuples())
    owner_names = merchants.staff_names(session, merchant_id, list({r[3] for r in rows if r[3]}))
    store_names = store_names_of(session, merchant_id, list({r[4] for r in rows if r[4]}))
    return {cid: (nickname or "", (phone or "") if unmask else mask_phone(phone), owner_names.get(owner or 0, ""),
                  store_names.get(store or 0, "")) for cid, nickname, phone, owner, store in rows}


def placements_by_ids(session: Session, *, merchant_id: int, ids: list[int]) -> dict[int, tuple[int, int]]:
    """{id: (store_id, owner_id)} (0 for none) of the live customers among `ids` that have a store or an
    owner, as plain tuples (analytics reads where each day's people belong)."""
    found: dict[int, tuple[int, int]] = {}
    for i in range(0, len(ids), 1000):
        stmt = select(Customer.id, Customer.store_id, Customer.owner_id).where(
            Customer.merchant_id == merchant_id, Customer.id.in_(ids[i:i + 1000]), Customer.merged_into_id.is_(None),
            or_(Customer.store_id.is_not(None), Customer.owner_id.is_not(None)))
        found.update({int(c): (int(st or 0), int(ow or 0)) for c, st, ow in session.execute(stmt)})
    return found


def placements_select(*, merchant_id: int) -> Select[Any]:
    """A SELECT of (customer_id, store_id, owner_id) of the live customers that have a store or an owner
    (`placements_by_ids` for every customer), for analytics to join its per-person rows to in the database."""
    return select(Customer.id.label("customer_id"), Customer.store_id.label("store_id"),
                  Customer.owner_id.label("owner_id")).where(
        Customer.merchant_id == merchant_id, Customer.merged_into_id.is_(None),
        or_(Customer.store_id.is_not(None), Customer.owner_id.is_not(None)))


def staff_choices(session: Session, *, actor: Principal) -> dict[str, list[Any]]:
    """Guides and stores the actor may filter by (console filter bar)."""
    if actor.role == Role.GUIDE:
        return {"guides": [], "stores": []}
    return {"guides": merchants.list_staff(session, actor=actor, role=Role.GUIDE.value),
            "stores": merchants.list_stores(session, actor=actor)}



def detail(session: Session, customer: Customer, *, actor: Principal, unmask: bool, timeline_limit: int = 30) -> dict[str, Any]:
    """Everything the detail page and GET /customers/{id} show; identities and phone masked unless
    `unmask` (the caller audits an unmasked view)."""
    item = summaries(session, [customer], actor=actor, unmask=unmask)[0]
    profile = {k: getattr(customer, k) for k in ("nickname", "name", "gender", "birthday", "region", "notes", "avatar_url")}
    profile["phone"] = item["phone"]
    return {
        **item,
        "merged_into_id": customer.merged_into_id,
        "profile": profile,
        "identities": [{"kind": i.kind, "value": i.value if unmask else mask_identity(i.kind, i.value),
                        "created_at": i.created_at} for i in identities(session, customer=customer)],
        "timeline": [{"id": t.id, "kind": t.kind, "text": t.text, "details": t.details, "actor_type": t.actor_type,
                      "actor_id": t.actor_id, "actor_name": t.actor_name, "created_at": t.created_at}
                     for t in timeline(session, customer=customer, limit=timeline_limit)],
    }
