"""Unit checks of the wire formats: money, quantities and timestamps (no server needed)."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from bearlumen.server.money import format_money, parse_cost, parse_quantity, quantity_json
from bearlumen.server.timefmt import format_ts, parse_ts


@pytest.mark.parametrize(
    ("value", "pico"),
    [
        ("4.50", 4_500_000_000_000),
        (Decimal("4.50"), 4_500_000_000_000),
        (4, 4_000_000_000_000),
        ("0.000000000001", 1),
        ("0.0000000000005", 0),  # half-even
        ("0.0000000000015", 2),
        ("1e-3", 1_000_000_000),
        ("1000000", 10**18),
        ("1000000.000000000001", None),
        ("-1", None),
        ("NaN", None),
        ("Infinity", None),
        ("abc", None),
        (True, None),
        ([], None),
    ],
)
def test_parse_cost(value: object, pico: object) -> None:
    assert parse_cost(value) == pico


@pytest.mark.parametrize(
    ("value", "micro"),
    [
        (0, 0),
        (150000, 150_000_000_000),
        (Decimal("1.5"), 1_500_000),
        (Decimal("0.000001"), 1),
        (Decimal("0.0000001"), None),
        (Decimal("-0.0"), 0),
        (-1, None),
        (True, None),
        (10**12 + 1, None),
        (Decimal("NaN"), None),
        ("1", None),
    ],
)
def test_parse_quantity(value: object, micro: object) -> None:
    assert parse_quantity(value) == micro


def test_format_money_and_quantity() -> None:
    assert [format_money(p) for p in (0, 1, 4_500_000_000_000, 10**12, 123_000_000)] == [
        "0",
        "0.000000000001",
        "4.5",
        "1",
        "0.000123",
    ]
    assert orjson.dumps([quantity_json(m) for m in (0, 1_500_000, 1, 123_456_789_012_123_456)]) == (
        b"[0,1.5,0.000001,123456789012.123456]"
    )


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2024-01-01T00:00:00Z", "2024-01-01T00:00:00.000000Z"),
        ("2024-01-01T00:00:00.123456Z", "2024-01-01T00:00:00.123456Z"),
        ("2024-01-01T00:00:00.1234569Z", "2024-01-01T00:00:00.123456Z"),
        ("2024-01-31", "2024-01-31T00:00:00.000000Z"),
        ("2024-01-01T10:00:00+02:00", "2024-01-01T08:00:00.000000Z"),
        ("2024-01-01T10:00:00-0230", "2024-01-01T12:30:00.000000Z"),
        ("2024-01-01 10:00", "2024-01-01T10:00:00.000000Z"),
        ("2024-01-01T10:00:00", "2024-01-01T10:00:00.000000Z"),
        ("2024-02-30", None),
        ("2024-01-01T24:00:00Z", None),
        ("01/02/2024", None),
        ("", None),
    ],
)
def test_parse_ts(text: str, iso: object) -> None:
    micros = parse_ts(text)
    assert (None if micros is None else format_ts(micros)) == iso


def test_only_transient_database_errors_become_503() -> None:
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from bearlumen.server.app import _transient

    def wrapped(message: str) -> OperationalError:
        return OperationalError("SELECT 1", {}, sqlite3.OperationalError(message))

    assert _transient(wrapped("database is locked"))
    assert not _transient(wrapped("no such table: usage_events"))
