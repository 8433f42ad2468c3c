"""Money is an int of 分 (cents); rates are int basis points (1% = 100 bps). No floats, ever.

Rounding happens here and only here: half-up. Proportional splits use largest remainder so the
parts always add up to the whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

BPS_WHOLE = 10_000


def div_half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half away from zero, in integers."""
    if denominator == 0:
        raise ZeroDivisionError("denominator is zero")
    if denominator < 0:
        numerator, denominator = -numerator, -denominator
    q, r = divmod(abs(numerator), denominator)
    if 2 * r >= denominator:
        q += 1
    return q if numerator >= 0 else -q


def apply_bps(amount_cents: int, bps: int) -> int:
    """The `bps` share of an amount, rounded half-up (e.g. 10% of ¥0.05 is ¥0.01)."""
    return div_half_up(amount_cents * bps, BPS_WHOLE)


def split_largest_remainder(total: int, weights: Sequence[int]) -> list[int]:
    """Split `total` in proportion to `weights`; the parts sum to `total` exactly.

    Each part gets the floor of its exact share; the units left over go to the largest
    remainders, ties to the earlier weight. Zero weights get zero (unless all are zero, which
    is an error).
    """
    if any(w < 0 for w in weights):
        raise ValueError("weights must be non-negative")
    weight_sum = sum(weights)
    if not weights:
        if total:
            raise ValueError("cannot split a non-zero total across no parts")
        return []
    if weight_sum == 0:
        raise ValueError("weights sum to zero")
    sign = -1 if total < 0 else 1
    magnitude = abs(total)
    parts = []
    remainders = []
    for i, w in enumerate(weights):
        q, r = divmod(magnitude * w, weight_sum)
        parts.append(q)
        remainders.append((-r, i))
    left = magnitude - sum(parts)
    for _, i in sorted(remainders)[:left]:
        parts[i] += 1
    return [sign * p for p in parts]


def _two_decimals(value: Decimal) -> bool:
    """A finite number with at most two decimals (a huge exponent is not one: quantize cannot hold it)."""
    try:
        return value.is_finite() and value == value.quantize(Decimal("0.01"))
    except InvalidOperation:
        return False


def yuan_to_cents(text: str | int) -> int:
    """Parse what a person typed ("12", "12.5", "1,234.50", "¥8") into cents; exact, no floats."""
    if isinstance(text, int):
        return text * 100
    cleaned = str(text).strip().replace(",", "").replace("¥", "").replace("￥", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {text!r}") from exc
    if not _two_decimals(value):
        raise ValueError(f"not an amount with at most two decimals: {text!r}")
    return int((value * 100).to_integral_value(rounding=ROUND_HALF_UP))


def percent_to_bps(text: str) -> int:
    """Parse a percentage a person typed ("15", "12.5", "8.25%") into basis points; exact, no floats."""
    cleaned = str(text).strip().rstrip("%").strip()
    try:
        value = Decimal(cleaned)
    except InvalidOperation as exc:
        raise ValueError(f"not a percentage: {text!r}") from exc
    if not _two_decimals(value):
        raise ValueError(f"not a percentage with at most two decimals: {text!r}")
    return int(value * 100)


def cents_to_yuan_str(cents: int) -> str:
    """1234 -> "12.34" (for form fields)."""
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{whole}.{frac:02d}"


def format_cents(cents: int | None, symbol: str = "¥") -> str:
    """123450 -> "¥1,234.50"."""
    if cents is None:
        return "—"
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{symbol}{whole:,}.{frac:02d}"
