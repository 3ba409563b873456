"""Unit tests for plugins/module_utils/_units.py."""

from __future__ import annotations

from decimal import Decimal

import pytest
from ansible_collections.connect.platform.plugins.module_utils._units import (
    GIB,
    KIB,
    MIB,
    PIB,
    TIB,
    UnitError,
    format_pg_kb,
    human_size,
    parse_cpus,
    parse_int,
    parse_size,
    round_half_up,
)
from hypothesis import given
from hypothesis import strategies as st


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # the spellings the issue names, all binary
        ("32GB", 32 * GIB),
        ("32g", 32 * GIB),
        ("32G", 32 * GIB),
        ("32gb", 32 * GIB),
        ("32GiB", 32 * GIB),
        ("32 GB", 32 * GIB),
        (" 32g ", 32 * GIB),
        ("32768MB", 32 * GIB),
        ("512MB", 512 * MIB),
        ("512m", 512 * MIB),
        ("1TB", TIB),
        ("1t", TIB),
        ("1PB", PIB),
        ("10g", 10 * 1024**3),
        ("2GB", 2 * 1073741824),
        ("8kB", 8 * 1024),
        ("8k", 8192),
        ("72315kB", 72315 * 1024),
        ("100b", 100),
        ("100", 100),
        ("34359738368", 32 * GIB),
        (34359738368, 32 * GIB),
        (34359738368.0, 32 * GIB),
        (0, 0),
        ("0g", 0),
        # fractions are allowed and truncated to whole bytes, as Docker does
        ("1.5g", 1536 * MIB),
        ("0.5GB", 512 * MIB),
        (".5k", 512),
        ("1.1b", 1),
    ],
)
def test_parse_size(value, expected):
    assert parse_size(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("32XB", "unknown unit 'XB'"),
        ("32 gigs", "unknown unit 'gigs'"),
        ("32gbb", "unknown unit 'gbb'"),
        ("thirty", "is not a size"),
        ("", "is not a size"),
        ("g", "is not a size"),
        ("1.2.3g", "is not a size"),
        ("-1g", "is negative"),
        (-5, "is negative"),
        (1.5, "is not a whole number of bytes"),
        (float("inf"), "is not a whole number of bytes"),
        (True, "is not a size"),
        (None, "is not a size"),
        ([1], "not list"),
    ],
)
def test_parse_size_refuses(value, message):
    with pytest.raises(UnitError, match="memory") as info:
        parse_size(value, "memory")
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_parse_size_error_says_what_to_write():
    with pytest.raises(UnitError) as info:
        parse_size("32XB", "mem_limit")
    assert "e.g. 32g, 512MB or 1TB" in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3.0", Decimal(3)),
        (3, Decimal(3)),
        ("0.5", Decimal("0.5")),
        (0.5, Decimal("0.5")),
        (".5", Decimal("0.5")),
        ("1.", Decimal(1)),
        (" 2 ", Decimal(2)),
        (0.1, Decimal("0.1")),
        ("0", Decimal(0)),
    ],
)
def test_parse_cpus(value, expected):
    assert parse_cpus(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("500m", "takes no unit"),
        ("two", "is not a number of CPUs"),
        ("-1", "is negative"),
        (-0.5, "is negative"),
        (True, "is not a number of CPUs"),
        (None, "is not a number of CPUs"),
        (float("nan"), "is not a number of CPUs"),
        ({"cpus": 1}, "not dict"),
    ],
)
def test_parse_cpus_refuses(value, message):
    with pytest.raises(UnitError) as info:
        parse_cpus(value, "cpus")
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(100, 100), ("100", 100), (" 20 ", 20), (16.0, 16), ("-3", -3)],
)
def test_parse_int(value, expected):
    assert parse_int(value, "n") == expected


@pytest.mark.parametrize(
    ("value", "bounds", "message"),
    [
        ("1.5", {}, "is not a whole number"),
        (1.5, {}, "is not a whole number"),
        (True, {}, "is not a whole number"),
        (None, {}, "is not a whole number"),
        (19, {"minimum": 20}, "at least 20"),
        (1000000, {"maximum": 999999}, "at most 999999"),
    ],
)
def test_parse_int_refuses(value, bounds, message):
    with pytest.raises(UnitError) as info:
        parse_int(value, "max_connections", **bounds)
    assert message in str(info.value)
    assert "max_connections" in str(info.value)


@pytest.mark.parametrize(
    ("kilobytes", "expected"),
    [
        # PGTune's formatValue: GB if a whole number of 1048576 kB, else MB if
        # a whole number of 1024 kB, else kB.
        (8388608, "8GB"),
        (25165824, "24GB"),
        (16384, "16MB"),
        (2096128, "2047MB"),
        (3932, "3932kB"),
        (72315, "72315kB"),
        (1536, "1536kB"),
        (1048576 + 1024, "1025MB"),
        (102400, "100MB"),
    ],
)
def test_format_pg_kb(kilobytes, expected):
    assert format_pg_kb(kilobytes) == expected


@pytest.mark.parametrize(
    ("num_bytes", "expected"),
    [
        (52 * GIB, "52GiB"),
        (42 * GIB + 512 * MIB, "42.5GiB"),
        (512 * MIB, "512MiB"),
        (1536, "1.5KiB"),
        (0, "0B"),
        (1023, "1023B"),
        (-3 * GIB, "-3GiB"),
        (2 * TIB, "2TiB"),
        (GIB - 1, "1024MiB"),  # 1023.999... rounds half up to one decimal
    ],
)
def test_human_size(num_bytes, expected):
    assert human_size(num_bytes) == expected


@pytest.mark.parametrize(
    ("value", "expected"), [(Decimal("81.25"), 81.3), (Decimal("59.375"), 59.4), (100, 100.0), (Decimal("39.84375"), 39.8)]
)
def test_round_half_up(value, expected):
    assert round_half_up(value) == expected


_SPELLINGS = {
    KIB: ("k", "K", "kb", "kB", "KB", "kib", "KiB"),
    MIB: ("m", "M", "mb", "MB", "mib", "MiB"),
    GIB: ("g", "G", "gb", "GB", "gib", "GiB"),
    TIB: ("t", "T", "tb", "TB", "tib", "TiB"),
}


@given(
    number=st.integers(min_value=0, max_value=10**6),
    factor=st.sampled_from(sorted(_SPELLINGS)),
    data=st.data(),
)
def test_every_spelling_is_binary(number, factor, data):
    unit = data.draw(st.sampled_from(_SPELLINGS[factor]))
    space = data.draw(st.sampled_from(["", " "]))
    assert parse_size(f"{number}{space}{unit}") == number * factor


@given(st.integers(min_value=1, max_value=2**50))
def test_pg_format_round_trips(kilobytes):
    # formatting a kB amount and reading it back gives the same bytes
    assert parse_size(format_pg_kb(kilobytes)) == kilobytes * KIB


@given(st.integers(min_value=0, max_value=2**60))
def test_bytes_as_int_and_as_digits_agree(num_bytes):
    assert parse_size(num_bytes) == parse_size(str(num_bytes)) == num_bytes


@given(st.decimals(min_value=0, max_value=1000, places=2, allow_nan=False))
def test_cpus_string_is_exact(amount):
    assert parse_cpus(str(amount)) == amount
