"""Kubernetes quantities as exact decimals (the reference's rules, §6.4, plus n/u and exponents)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from jangar.scheduler.quantity import QuantityError, format_decimal, parse_quantity


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2", "2"),
        ("500m", "0.5"),
        ("1.5", "1.5"),
        (".5", "0.5"),
        ("16Gi", str(16 * 1024**3)),
        ("1Ki", "1024"),
        ("1Ei", str(1024**6)),
        ("2k", "2000"),
        ("2K", "2000"),
        ("3M", "3000000"),
        ("1G", "1000000000"),
        ("1E", str(10**18)),
        ("100u", "0.0001"),
        ("5n", "0.000000005"),
        ("1e3", "1000"),
        ("2E-3", "0.002"),
        (" 8 ", "8"),
        ("-1", "-1"),
        (7, "7"),
        (0.25, "0.25"),
    ],
)
def test_quantities(text: object, expected: str) -> None:
    assert parse_quantity(text) == Decimal(expected)


@pytest.mark.parametrize("bad", ["", "abc", "1Xi", "1.2.3", "Gi", "1 Gi", "1gi", True, None, [1]])
def test_not_quantities(bad: object) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(bad)


@pytest.mark.parametrize(
    ("value", "places", "text"),
    [("1.2300", 3, "1.23"), ("2", 3, "2"), ("0.0004", 3, "0"), ("1234567.891", 0, "1234568"), ("-0", 2, "0")],
)
def test_format_decimal(value: str, places: int, text: str) -> None:
    assert format_decimal(Decimal(value), places) == text
