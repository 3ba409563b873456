# Copyright (c) 2025, Connect platform operations
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0
"""Size and CPU parsing shared by the connect.platform filters.

Private to the collection (underscore-prefixed); importable without Ansible.

Every size unit here is *binary*, whatever its spelling (case-insensitive):

- ``b`` or no unit: 1
- ``k``, ``kb``, ``kib``: 1024
- ``m``, ``mb``, ``mib``: 1024 ** 2
- ``g``, ``gb``, ``gib``: 1024 ** 3
- ``t``, ``tb``, ``tib``: 1024 ** 4
- ``p``, ``pb``, ``pib``: 1024 ** 5

This is what Docker does for ``mem_limit`` (go-units ``RAMInBytes``: ``10g`` is
10 * 1024**3 bytes), what PGTune does (its ``GB`` is 1073741824 bytes) and what
PostgreSQL does (``kB`` is 1024 bytes).  A bare integer, or a string of digits,
is a number of bytes.  A fraction (``1.5g``) is allowed and truncated to whole
bytes, as Docker does.

CPU amounts follow Docker's ``cpus`` option: a decimal number of logical CPUs
(``"0.5"``, ``3``, ``"3.0"``), kept as :class:`decimal.Decimal` so sums are exact.
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

KIB = 1024
MIB = 1024**2
GIB = 1024**3
TIB = 1024**4
PIB = 1024**5

_UNIT_FACTORS = {
    "": 1,
    "b": 1,
    "k": KIB,
    "kb": KIB,
    "kib": KIB,
    "m": MIB,
    "mb": MIB,
    "mib": MIB,
    "g": GIB,
    "gb": GIB,
    "gib": GIB,
    "t": TIB,
    "tb": TIB,
    "tib": TIB,
    "p": PIB,
    "pb": PIB,
    "pib": PIB,
}

UNITS_HELP = (
    "use a number of bytes or a number with one of the binary units k, m, g, t, p (optionally followed by B or iB), e.g. 32g, 512MB or 1TB"
)

_SIZE_RE = re.compile(r"^([+-]?)(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)$", re.IGNORECASE)
_CPU_RE = re.compile(r"^([+-]?)(\d+(?:\.\d*)?|\.\d+)$")


class UnitError(ValueError):
    """A size or CPU amount that cannot be understood."""


def _describe(value):
    return repr(value) if isinstance(value, str) else str(value)


def parse_size(value, what="size"):
    """Return ``value`` as a whole number of bytes (an ``int``, may be 0).

    ``value`` is an ``int`` (bytes), an integral ``float`` (bytes) or a string
    such as ``"32GB"``, ``"32g"``, ``"512 MiB"``, ``"8kB"`` or ``"34359738368"``.
    ``what`` names the value in error messages.  Negative sizes are refused.
    """
    if isinstance(value, bool) or value is None:
        raise UnitError(f"{what} {_describe(value)} is not a size; {UNITS_HELP}")
    if isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise UnitError(f"{what} {value} is not a whole number of bytes; {UNITS_HELP}")
        number = Decimal(int(value))
    elif isinstance(value, str):
        match = _SIZE_RE.match(value.strip())
        if not match:
            raise UnitError(f"{what} {value!r} is not a size; {UNITS_HELP}")
        sign, digits, unit = match.groups()
        factor = _UNIT_FACTORS.get(unit.lower())
        if factor is None:
            raise UnitError(f"{what} {value!r} has an unknown unit {unit!r}; {UNITS_HELP}")
        number = Decimal(digits) * factor
        if sign == "-":
            number = -number
    else:
        raise UnitError(f"{what} must be a number of bytes or a string with a unit, not {type(value).__name__}; {UNITS_HELP}")
    if number < 0:
        raise UnitError(f"{what} {_describe(value)} is negative; sizes must be positive")
    return int(number)  # truncates a fraction of a byte, as Docker does


def parse_cpus(value, what="cpus"):
    """Return a Docker ``cpus`` amount (``3``, ``"3.0"``, ``0.5``) as a Decimal >= 0."""
    if isinstance(value, bool) or value is None:
        raise UnitError(f"{what} {_describe(value)} is not a number of CPUs; use a decimal number such as 2, '3.0' or '0.5'")
    if isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise UnitError(f"{what} {value} is not a number of CPUs; use a decimal number such as 2, '3.0' or '0.5'")
        number = Decimal(repr(value))
    elif isinstance(value, str):
        match = _CPU_RE.match(value.strip())
        if not match:
            raise UnitError(
                f"{what} {value!r} is not a number of CPUs; use a decimal number such as 2, '3.0' or '0.5' "
                "(Docker's cpus option takes no unit)"
            )
        try:
            number = Decimal(match.group(2))
        except InvalidOperation as exc:  # pragma: no cover - the regex prevents it
            raise UnitError(f"{what} {value!r} is not a number of CPUs") from exc
        if match.group(1) == "-":
            number = -number
    else:
        raise UnitError(f"{what} must be a number of CPUs, not {type(value).__name__}; use a decimal number such as 2, '3.0' or '0.5'")
    if number < 0:
        raise UnitError(f"{what} {_describe(value)} is negative; CPU amounts must be positive")
    return number


def parse_int(value, what, minimum=None, maximum=None):
    """Return ``value`` as an ``int`` (accepting ``"100"``), checking the bounds."""
    if isinstance(value, bool) or value is None:
        raise UnitError(f"{what} {_describe(value)} is not a whole number")
    if isinstance(value, int):
        number = value
    elif (isinstance(value, float) and value.is_integer()) or (isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value)):
        number = int(value)
    else:
        raise UnitError(f"{what} {_describe(value)} is not a whole number")
    if minimum is not None and number < minimum:
        raise UnitError(f"{what} {number} is too small; it must be at least {minimum}")
    if maximum is not None and number > maximum:
        raise UnitError(f"{what} {number} is too large; it must be at most {maximum}")
    return number


def format_pg_kb(kilobytes):
    """Format a kB amount the way PGTune and postgresql.conf write it.

    PGTune's rule (``formatValue`` in its configuration view): use ``GB`` when
    the value is a whole number of GB (1048576 kB), else ``MB`` when it is a
    whole number of MB (1024 kB), else ``kB``.  Units are binary.
    """
    kilobytes = int(kilobytes)
    if kilobytes % (GIB // KIB) == 0:
        return f"{kilobytes // (GIB // KIB)}GB"
    if kilobytes % (MIB // KIB) == 0:
        return f"{kilobytes // (MIB // KIB)}MB"
    return f"{kilobytes}kB"


def human_size(num_bytes):
    """Format bytes for people: ``52GiB``, ``42.5GiB``, ``512MiB``, ``0B``.

    Uses the largest binary unit that keeps the number >= 1, one decimal
    place at most (rounded half up), without a trailing ``.0``.
    """
    num_bytes = int(num_bytes)
    sign = "-" if num_bytes < 0 else ""
    magnitude = abs(num_bytes)
    for suffix, factor in (("PiB", PIB), ("TiB", TIB), ("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if magnitude >= factor:
            amount = (Decimal(magnitude) / factor).quantize(Decimal("0.1"), ROUND_HALF_UP)
            return f"{sign}{format_decimal(amount)}{suffix}"
    return f"{sign}{magnitude}B"


def format_decimal(value):
    """``Decimal('3.0')`` -> ``'3'``, ``Decimal('0.50')`` -> ``'0.5'``."""
    text = format(Decimal(value).normalize(), "f")
    return text


def round_half_up(value, places=1):
    """Round a Decimal/number half up to ``places`` decimals and return a float."""
    quantum = Decimal(1).scaleb(-places)
    return float(Decimal(value).quantize(quantum, ROUND_HALF_UP))
