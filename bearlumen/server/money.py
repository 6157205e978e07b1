"""Exact money and quantities: integers in storage, decimal strings (money) or numbers (quantities) in JSON.

- Money is stored in pico-dollars (1e-12 USD) in BIGINT columns. An input with finer digits is rounded
  half-even to 1e-12 (sub-pico digits are pricing noise, not money anyone bills).
- Quantities are stored in micro-units (1e-6). An input with finer digits is rejected, not rounded: a
  quantity is what the customer is billed for, and silently changing it would be worse than an error.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from typing import Any, Optional, Union

import orjson

__all__ = [
    "LIMB",
    "MAX_COST_USD",
    "MAX_QUANTITY",
    "MICRO",
    "PICO",
    "format_money",
    "format_quantity",
    "money_or_none",
    "parse_cost",
    "parse_quantity",
    "quantity_json",
]

PICO = 10**12
MICRO = 10**6
# Bounds that keep every per-event value inside a signed 64-bit column (at most LIMB units each). Sums never
# overflow: rollups carry whole LIMBs in a second column (schema.ROLLUP_SUMS), queries sum exactly.
MAX_QUANTITY = 10**12
MAX_COST_USD = 10**6
LIMB = 10**18
# Enough digits that shifting a decimal by 12 places never rounds (inputs are capped at 64 characters).
_EXACT = Context(prec=120)
_ONE = Decimal(1)

Number = Union[int, float, Decimal]


def parse_quantity(value: Any) -> Optional[int]:
    """A JSON number >= 0 with at most 6 decimals -> micro-units; None when invalid."""
    if type(value) is int:  # the common case; also excludes bool
        return value * MICRO if 0 <= value <= MAX_QUANTITY else None
    if isinstance(value, float):
        value = Decimal(repr(value))  # only reached when the body was not parsed with Decimal floats
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0 or value > MAX_QUANTITY:
        return None
    scaled = value.scaleb(6, _EXACT)
    if scaled != scaled.to_integral_value(context=_EXACT):
        return None
    return int(scaled)


# A plain decimal string with at most 12 decimals (what the SDK sends): converted with integer arithmetic.
_PLAIN_COST = re.compile(r"(\d{1,7})(?:\.(\d{1,12}))?")


def parse_cost(value: Any) -> Optional[int]:
    """``provider_cost_usd`` (a number >= 0 or a decimal string) -> pico-dollars; None when invalid."""
    if type(value) is int:
        return value * PICO if 0 <= value <= MAX_COST_USD else None
    if type(value) is str:
        plain = _PLAIN_COST.fullmatch(value)
        if plain is not None:
            whole, frac = plain.groups()
            pico = int(whole) * PICO + (int(frac.ljust(12, "0")) if frac else 0)
            return pico if pico <= MAX_COST_USD * PICO else None
        if len(value) > 64:
            return None
        try:
            value = Decimal(value.strip())
        except InvalidOperation:
            return None
    elif isinstance(value, float):
        value = Decimal(repr(value))
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0 or value > MAX_COST_USD:
        return None
    return int(value.scaleb(12, _EXACT).quantize(_ONE, rounding=ROUND_HALF_EVEN, context=_EXACT))


def format_money(pico: int) -> str:
    """Pico-dollars -> plain decimal string without trailing zeros: ``"4.5"``, ``"0.000123"``, ``"0"``."""
    sign = "-" if pico < 0 else ""
    whole, frac = divmod(abs(pico), PICO)
    if not frac:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{frac:012d}".rstrip("0")


def money_or_none(pico: int, priced_count: int) -> Optional[str]:
    """A group's cost: None (unknown) when none of its events was priced, never a made-up zero."""
    return format_money(pico) if priced_count else None


def quantity_json(micro: int) -> Union[int, orjson.Fragment]:
    """Micro-units -> a JSON number: an integer when integral, else the exact decimal literal."""
    whole, frac = divmod(micro, MICRO)
    if not frac:
        return whole
    return orjson.Fragment(format_quantity(micro))


def format_quantity(micro: int) -> str:
    """Micro-units -> plain decimal string without trailing zeros: ``"1500"``, ``"0.25"``."""
    whole, frac = divmod(micro, MICRO)
    return str(whole) if not frac else f"{whole}.{frac:06d}".rstrip("0")
