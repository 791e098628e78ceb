"""Kubernetes resource quantities (`500m`, `2`, `16Gi`, `1e3`) as exact decimals.

The reference parsed Budget limits with these rules (§6.4): `m` divides by 1000, `Ki`…`Ei` are powers of
1024, `k`/`K`…`E` powers of 1000. Kubernetes also accepts `n` and `u` (nano, micro) and a decimal exponent
(`1e3`, `2E-3`); so do we. Anything else is a `QuantityError` naming the value, never a silent zero.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

__all__ = ["QuantityError", "format_decimal", "parse_quantity"]

_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "K": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:(?P<exp>[eE][+-]?\d+)|(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkKMGTPE])?)$"
)


class QuantityError(ValueError):
    """A value that is not a Kubernetes quantity."""


def parse_quantity(value: object) -> Decimal:
    """`value` (a str, int or float) as an exact Decimal; raises `QuantityError` for anything else."""
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a quantity")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(str(value))
    if not isinstance(value, str):
        raise QuantityError(f"{value!r} is not a quantity")
    match = _QUANTITY.match(value.strip())
    if match is None:
        raise QuantityError(f"{value!r} is not a quantity (for example 500m, 2, 16Gi)")
    try:
        number = Decimal(match["number"])
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only valid decimals
        raise QuantityError(f"{value!r} is not a quantity") from exc
    if match["exp"]:
        return number.scaleb(int(match["exp"][1:]))
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * (Decimal(1024) ** _BINARY[suffix])
    return number.scaleb(_DECIMAL[suffix])


def format_decimal(value: Decimal, places: int = 3) -> str:
    """A plain decimal string (no exponent, no trailing zeros) rounded to `places` decimals."""
    quantized = value.quantize(Decimal(1).scaleb(-places)) if places > 0 else value.quantize(Decimal(1))
    text = format(quantized, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text
