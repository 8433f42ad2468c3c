"""Masking of personal data for roles that may not see it (DESIGN.md: customer personal data)."""

from __future__ import annotations


def mask_phone(phone: str | None) -> str:
    """13812345678 -> 138****5678."""
    if not phone:
        return ""
    if len(phone) < 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def mask_name(name: str | None) -> str:
    """张三丰 -> 张**."""
    if not name:
        return ""
    return name[0] + "*" * (len(name) - 1)
