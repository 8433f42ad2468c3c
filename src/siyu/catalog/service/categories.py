"""Categories: two levels, a top level and children of it."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.catalog.models import Category, Product
from siyu.core.auth import Principal, get_scoped, scoped, system_principal
from siyu.core.errors import Conflict, field_error


def get_category(session: Session, category_id: int, *, actor: Principal) -> Category:
    return get_scoped(session, Category, category_id, actor)


def list_categories(session: Session, *, merchant_id: int) -> list[Category]:
    """Every category of the merchant, top levels and children, in display order."""
    stmt = scoped(select(Category), Category, system_principal(merchant_id))
    return list(session.scalars(stmt.order_by(Category.sort_order, Category.id)))


def category_tree(session: Session, *, merchant_id: int) -> list[tuple[Category, list[Category]]]:
    """Top-level categories, each with its children, in display order."""
    rows = list_categories(session, merchant_id=merchant_id)
    children: dict[int, list[Category]] = {}
    for c in rows:
        if c.parent_id is not None:
            children.setdefault(c.parent_id, []).append(c)
    return [(c, children.get(c.id, [])) for c in rows if c.parent_id is None]


def _check_parent(session: Session, actor: Principal, parent_id: int | None, *, moving: Category | None = None) -> None:
    if parent_id is None:
        return
    try:
        parent = get_category(session, parent_id, actor=actor)
    except Exception as exc:
        raise field_error("parent_id", "Choose an existing category.") from exc
    if parent.parent_id is not None:
        raise field_error("parent_id", "Categories have two levels: choose a top-level category as the parent.")
    if moving is not None:
        if parent.id == moving.id:
            raise field_error("parent_id", "A category cannot be its own parent.")
        has_children = session.scalar(select(Category.id).where(Category.parent_id == moving.id).limit(1))
        if has_children:
            raise field_error("parent_id", "This category has children, so it must stay at the top level.")


def _check_name(session: Session, merchant_id: int, name: str, parent_id: int | None, exclude_id: int | None = None) -> None:
    stmt = select(Category.id).where(Category.merchant_id == merchant_id, Category.name == name,
                                     Category.parent_id.is_(None) if parent_id is None else Category.parent_id == parent_id)
    if exclude_id:
        stmt = stmt.where(Category.id != exclude_id)
    if session.scalar(stmt.limit(1)):
        raise field_error("name", "A category with this name already exists here.")


def create_category(session: Session, *, actor: Principal, name: str, parent_id: int | None = None,
                    sort_order: int = 0) -> Category:
    """A new top-level category, or a child of a top-level one (never a third level)."""
    actor.require("catalog.manage")
    name = name.strip()
    if not name or len(name) > 40:
        raise field_error("name", "Enter a name of at most 40 characters.")
    _check_parent(session, actor, parent_id)
    _check_name(session, actor.merchant_id, name, parent_id)
    category = Category(merchant_id=actor.merchant_id, name=name, parent_id=parent_id, sort_order=sort_order)
    session.add(category)
    session.flush()
    return category


_UNSET = object()


def update_category(session: Session, category_id: int, *, actor: Principal, name: str | None = None,
                    parent_id: int | None | object = _UNSET, sort_order: int | None = None) -> Category:
    actor.require("catalog.manage")
    category = get_category(session, category_id, actor=actor)
    new_parent = category.parent_id if parent_id is _UNSET else parent_id
    if new_parent != category.parent_id:
        _check_parent(session, actor, new_parent, moving=category)  # type: ignore[arg-type]
    new_name = category.name if name is None else name.strip()
    if not new_name or len(new_name) > 40:
        raise field_error("name", "Enter a name of at most 40 characters.")
    if new_name != category.name or new_parent != category.parent_id:
        _check_name(session, actor.merchant_id, new_name, new_parent, exclude_id=category.id)  # type: ignore[arg-type]
    category.name = new_name
    category.parent_id = new_parent  # type: ignore[assignment]
    if sort_order is not None:
        category.sort_order = sort_order
    session.flush()
    return category


def delete_category(session: Session, category_id: int, *, actor: Principal) -> None:
    """Only an empty category can go: no children and no products."""
    actor.require("catalog.manage")
    category = get_category(session, category_id, actor=actor)
    children = session.scalar(select(func.count()).select_from(Category).where(Category.parent_id == category.id))
    products = session.scalar(select(func.count()).select_from(Product).where(
        Product.merchant_id == actor.merchant_id, Product.category_id == category.id))
    if children or products:
        raise Conflict("Move its products and child categories first.", code="category_in_use",
                       details={"children": children, "products": products})
    session.delete(category)
    session.flush()


def category_ids_with_children(session: Session, *, merchant_id: int, category_id: int) -> list[int]:
    """The category and, for a top-level one, its children (a filter on a parent shows all)."""
    stmt = select(Category.id).where(Category.merchant_id == merchant_id,
                                     (Category.id == category_id) | (Category.parent_id == category_id))
    return list(session.scalars(stmt))
