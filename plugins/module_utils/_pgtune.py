# Copyright (c) 2025, Connect platform operations
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0
"""PGTune's postgresql.conf recommendations, and a container-aware layer on top.

Private to the collection (underscore-prefixed); importable without Ansible.
Errors are :class:`PgTuneError`, a plain ``ValueError`` subclass.

Source followed
---------------
PGTune (https://github.com/le0pard/pgtune) at commit
``7caef27c204d304623eda21f23e7d56c1ad78d36`` (2026-07-30): the selectors in
``src/features/configuration/configurationSlice.js``, the constants in
``src/features/configuration/constants.js``, the form limits in
``src/common/components/configurationForm/validation.js`` and the output rule
(order, ``formatValue`` kB/MB/GB formatting, settings whose value is empty are
not printed) in ``src/common/components/configurationView/index.jsx``.  The
formulas were re-implemented here in Python; no PGTune code is copied.

PGTune works in kB (``total_kb = bytes / 1024``; its GB is 1024**3 bytes) and
with JavaScript numbers (IEEE doubles); :func:`pgtune` does the same arithmetic
in the same order with Python floats, so ``Math.floor`` results are identical.

Formulas (``kb`` = total memory in kB, ``conn`` = max_connections):

- ``max_connections``: given, else web 200, oltp 300, dw 40, desktop 20, mixed 100.
- ``shared_buffers``: ``floor(kb/4)`` (desktop ``floor(kb/16)``); PG < 10 on
  Windows capped at 512MB.
- ``effective_cache_size``: ``floor(kb*3/4)`` (desktop ``floor(kb/4)``).
- ``maintenance_work_mem``: ``floor(kb/16)`` (dw ``floor(kb/8)``), capped at
  8GB; on Windows with PG <= 17 capped at 2GB - 1MB.
- ``checkpoint_completion_target``: 0.9.
- ``wal_buffers``: ``floor(3*shared_buffers/100)``, at most 16MB, raised to
  16MB when above 14MB, at least 32kB.
- ``default_statistics_target``: 100 (dw 500).
- ``random_page_cost``: 1.1; 4 on hdd, and 4 for dw, unless db_size is
  ``less_ram`` (then 1.1 whatever the storage).
- ``effective_io_concurrency`` (Linux only): hdd 2, ssd 200, san 300, nvme 1000.
- ``work_mem``: ``w = (kb - shared_buffers) / ((conn + workers) * 3)`` with
  ``workers`` = cpus when cpus >= 4, else 8 (PostgreSQL's default
  max_worker_processes); ``floor(w)`` for web/oltp, ``floor(w/2)`` dw/mixed,
  ``floor(w/6)`` desktop; then ``floor(*1.3)`` for ``less_ram`` or
  ``floor(*0.9)`` for ``greater_ram``; at least 4MB; Windows PG <= 17 at most
  2GB - 1MB.
- ``huge_pages``: ``try`` when shared_buffers >= 2GB, else ``off``; always
  ``off`` on mac.
- ``jit``: ``off`` for web/oltp/mixed on PG >= 12, else not printed.
- ``wal_compression``: ``lz4`` on PG >= 15, ``on`` on PG 10-14.
- ``autovacuum_max_workers``: 4 when cpus >= 16, 5 when cpus >= 32, else not printed.
- ``autovacuum_work_mem``: 2GB when maintenance_work_mem >= 2GB, else not printed.
- ``io_method`` (PG >= 18): ``io_uring`` on Linux, ``worker`` elsewhere.
- ``io_workers`` (PG >= 18, not io_uring, cpus given): ``min(32, max(3, floor(cpus/4)))``, printed only when > 3.
- ``min_wal_size`` / ``max_wal_size``: web 1GB/4GB, oltp 2GB/8GB, dw 4GB/16GB,
  desktop 100MB/2GB, mixed 1GB/4GB.
- with cpus >= 4: ``max_worker_processes`` = cpus,
  ``max_parallel_workers_per_gather`` = ``ceil(cpus/2)`` (at most 4 unless dw),
  ``max_parallel_workers`` = cpus (PG >= 10),
  ``max_parallel_maintenance_workers`` = ``min(ceil(cpus/2), 4)`` (PG >= 11).
- desktop: ``wal_level = minimal`` and ``max_wal_senders = 0``.

PGTune's form refuses memory below 512MB, connections below 20, cpus below 1
and numbers above 999999; so does :func:`pgtune`.  PGTune's form only takes a
whole number of MB/GB/TB; other byte counts go through the same formulas with
a fractional kB total.  PGTune has a native ``nvme`` storage type (see above),
so no mapping is needed.  PGTune's own default version is 18; this collection
defaults to 15 (the stack's PostgreSQL).  PGTune's warning comments are not
settings and are not returned.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from ansible_collections.connect.platform.plugins.module_utils._units import (
    GIB,
    KIB,
    MIB,
    TIB,
    UnitError,
    format_pg_kb,
    human_size,
    parse_cpus,
    parse_int,
    parse_size,
)

PGTUNE_COMMIT = "7caef27c204d304623eda21f23e7d56c1ad78d36"

DB_TYPES = ("web", "oltp", "dw", "desktop", "mixed")
STORAGE_TYPES = ("ssd", "hdd", "san", "nvme")
OS_TYPES = ("linux", "windows", "mac")
DB_SIZES = ("less_ram", "mid_ram", "greater_ram")
PG_VERSIONS = (10, 11, 12, 13, 14, 15, 16, 17, 18)
DEFAULT_PG_VERSION = 15

MIN_MEMORY_BYTES = 512 * MIB  # PGTune's form: at least 512 MB
MAX_NUMERIC_VALUE = 999999  # PGTune's form: every number at most 999999
MAX_MEMORY_BYTES = MAX_NUMERIC_VALUE * TIB  # 999999 TB, the largest PGTune takes
MIN_CONNECTIONS = 20  # PGTune's form: "Must be greater than or equal to 20"

_KB_PER_MB = MIB // KIB
_KB_PER_GB = GIB // KIB

_DEFAULT_CONNECTIONS = {"web": 200, "oltp": 300, "dw": 40, "desktop": 20, "mixed": 100}
_STATISTICS_TARGET = {"web": 100, "oltp": 100, "dw": 500, "desktop": 100, "mixed": 100}
_IO_CONCURRENCY = {"hdd": 2, "ssd": 200, "san": 300, "nvme": 1000}
_WAL_SIZES_MB = {  # (min_wal_size, max_wal_size) in MB
    "web": (1024, 4096),
    "oltp": (2048, 8192),
    "dw": (4096, 16384),
    "desktop": (100, 2048),
    "mixed": (1024, 4096),
}
_DEFAULT_WORKER_PROCESSES = 8  # PostgreSQL's max_worker_processes default


class PgTuneError(ValueError):
    """Input PGTune (or the container checks) cannot accept."""


def _choice(value, name, choices):
    if isinstance(value, str) and value.strip().lower() in choices:
        return value.strip().lower()
    raise PgTuneError(f"{name} {value!r} is not one PGTune knows; use one of: {', '.join(choices)}")


def _js_number(value):
    """Render a number as JavaScript's String(number) would (4 -> '4', 1.1 -> '1.1')."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _memory_bytes(memory, name="memory"):
    try:
        total = parse_size(memory, name)
    except UnitError as exc:
        raise PgTuneError(str(exc)) from exc
    if total <= 0:
        raise PgTuneError(f"{name} {memory!r} is not positive; give the memory PostgreSQL may use, e.g. '32GB'")
    if total < MIN_MEMORY_BYTES:
        raise PgTuneError(
            f"{name} {memory!r} ({human_size(total)}) is below 512MB, the least PGTune accepts; give PostgreSQL at least 512MB"
        )
    if total > MAX_MEMORY_BYTES:
        raise PgTuneError(f"{name} {memory!r} is above 999999TB, the most PGTune accepts")
    return total


def _options(db_type, cpus, max_connections, storage, pg_version, os_type, db_size):
    db_type = _choice(db_type, "db_type", DB_TYPES)
    storage = _choice(storage, "storage", STORAGE_TYPES)
    os_type = _choice(os_type, "os_type", OS_TYPES)
    db_size = _choice(db_size, "db_size", DB_SIZES)
    try:
        version = parse_int(pg_version, "pg_version")
        if cpus is not None:
            cpus = parse_int(cpus, "cpus", 1, MAX_NUMERIC_VALUE)
        if max_connections is not None:
            max_connections = parse_int(max_connections, "max_connections")
    except UnitError as exc:
        raise PgTuneError(str(exc)) from exc
    if version not in PG_VERSIONS:
        raise PgTuneError(f"pg_version {version} is not one PGTune tunes; use one of {PG_VERSIONS[0]}..{PG_VERSIONS[-1]}")
    if max_connections is not None and max_connections < MIN_CONNECTIONS:
        raise PgTuneError(
            f"max_connections {max_connections} is below {MIN_CONNECTIONS}, the least PGTune accepts; "
            "give at least 20 (leave it unset to use PGTune's default for the db_type)"
        )
    if max_connections is not None and max_connections > MAX_NUMERIC_VALUE:
        raise PgTuneError(f"max_connections {max_connections} is above {MAX_NUMERIC_VALUE}, the most PGTune accepts")
    return db_type, cpus, max_connections, storage, version, os_type, db_size


def pgtune(
    memory,
    db_type="web",
    cpus=None,
    max_connections=None,
    storage="ssd",
    pg_version=DEFAULT_PG_VERSION,
    os_type="linux",
    db_size="mid_ram",
):
    """Return PGTune's postgresql.conf settings as an ordered ``{name: str}`` dict.

    ``memory`` is the memory PostgreSQL may use: bytes, or a string with a
    binary unit (``"32GB"``, ``"32g"``, ``"512MB"``).  Keys, values and order
    are those PGTune prints for the same inputs.
    """
    total_bytes = _memory_bytes(memory)
    db_type, cpus, max_connections, storage, version, os_type, db_size = _options(
        db_type, cpus, max_connections, storage, pg_version, os_type, db_size
    )
    windows_2gb_limit = os_type == "windows" and version <= 17
    windows_cap_kb = 2 * _KB_PER_GB - _KB_PER_MB  # 2GB - 1MB

    total_kb = total_bytes / KIB  # a float, as PGTune's totalMemoryKb

    connections = max_connections or _DEFAULT_CONNECTIONS[db_type]

    if db_type == "desktop":
        shared_buffers = math.floor(total_kb / 16)
        effective_cache_size = math.floor(total_kb / 4)
    else:
        shared_buffers = math.floor(total_kb / 4)
        effective_cache_size = math.floor(total_kb * 3 / 4)
    if version < 10 and os_type == "windows":  # pragma: no cover - PGTune offers 10+
        shared_buffers = min(shared_buffers, 512 * _KB_PER_MB)

    huge_pages = "off" if os_type == "mac" or shared_buffers < 2 * _KB_PER_GB else "try"

    maintenance = math.floor(total_kb / 8) if db_type == "dw" else math.floor(total_kb / 16)
    maintenance_cap = 2 * _KB_PER_GB if windows_2gb_limit else 8 * _KB_PER_GB
    if maintenance >= maintenance_cap:
        maintenance = maintenance_cap - _KB_PER_MB if windows_2gb_limit else maintenance_cap

    wal_buffers = math.floor(3 * shared_buffers / 100)
    wal_buffers = min(wal_buffers, 16 * _KB_PER_MB)
    if 14 * _KB_PER_MB < wal_buffers < 16 * _KB_PER_MB:
        wal_buffers = 16 * _KB_PER_MB
    wal_buffers = max(wal_buffers, 32)

    if db_size == "less_ram":
        random_page_cost = 1.1
    elif storage == "hdd" or db_type == "dw":
        random_page_cost = 4
    else:
        random_page_cost = 1.1

    io_concurrency = _IO_CONCURRENCY[storage] if os_type == "linux" else None

    parallel = {}
    if cpus and cpus >= 4:
        per_gather = math.ceil(cpus / 2)
        if db_type != "dw":
            per_gather = min(per_gather, 4)
        parallel["max_worker_processes"] = cpus
        parallel["max_parallel_workers_per_gather"] = per_gather
        if version >= 10:
            parallel["max_parallel_workers"] = cpus
        if version >= 11:
            parallel["max_parallel_maintenance_workers"] = min(math.ceil(cpus / 2), 4)

    workers_for_work_mem = parallel.get("max_worker_processes", _DEFAULT_WORKER_PROCESSES)
    work_mem_base = (total_kb - shared_buffers) / ((connections + workers_for_work_mem) * 3)
    if db_type in ("dw", "mixed"):
        work_mem = math.floor(work_mem_base / 2)
    elif db_type == "desktop":
        work_mem = math.floor(work_mem_base / 6)
    else:
        work_mem = math.floor(work_mem_base)
    if db_size == "less_ram":
        work_mem = math.floor(work_mem * 1.3)
    elif db_size == "greater_ram":
        work_mem = math.floor(work_mem * 0.9)
    work_mem = max(work_mem, 4 * _KB_PER_MB)
    if windows_2gb_limit:
        work_mem = min(work_mem, windows_cap_kb)

    jit = "off" if version >= 12 and db_type in ("web", "oltp", "mixed") else None
    if version >= 15:
        wal_compression = "lz4"
    elif version >= 10:
        wal_compression = "on"
    else:  # pragma: no cover - PGTune offers 10+
        wal_compression = None

    autovacuum_max_workers = None
    if cpus and cpus >= 32:
        autovacuum_max_workers = 5
    elif cpus and cpus >= 16:
        autovacuum_max_workers = 4

    autovacuum_work_mem = 2 * _KB_PER_GB if maintenance >= 2 * _KB_PER_GB else None
    if autovacuum_work_mem is not None and windows_2gb_limit:  # pragma: no cover - unreachable
        autovacuum_work_mem = min(autovacuum_work_mem, windows_cap_kb)

    io_method = None
    if version >= 18:
        io_method = "io_uring" if os_type == "linux" else "worker"
    io_workers = None
    if version >= 18 and cpus and io_method != "io_uring":
        io_workers = min(32, max(3, math.floor(cpus / 4)))
        if io_workers <= 3:
            io_workers = None

    min_wal_mb, max_wal_mb = _WAL_SIZES_MB[db_type]

    rows = [
        ("max_connections", connections),
        ("shared_buffers", format_pg_kb(shared_buffers)),
        ("effective_cache_size", format_pg_kb(effective_cache_size)),
        ("maintenance_work_mem", format_pg_kb(maintenance)),
        ("checkpoint_completion_target", 0.9),
        ("wal_buffers", format_pg_kb(wal_buffers)),
        ("default_statistics_target", _STATISTICS_TARGET[db_type]),
        ("random_page_cost", random_page_cost),
        ("effective_io_concurrency", io_concurrency),
        ("work_mem", format_pg_kb(work_mem)),
        ("huge_pages", huge_pages),
        ("jit", jit),
        ("wal_compression", wal_compression),
        ("autovacuum_max_workers", autovacuum_max_workers),
        ("autovacuum_work_mem", format_pg_kb(autovacuum_work_mem) if autovacuum_work_mem else None),
        ("io_method", io_method),
        ("io_workers", io_workers),
        ("min_wal_size", format_pg_kb(min_wal_mb * _KB_PER_MB)),
        ("max_wal_size", format_pg_kb(max_wal_mb * _KB_PER_MB)),
    ]
    rows.extend(parallel.items())
    if db_type == "desktop":
        rows.extend([("wal_level", "minimal"), ("max_wal_senders", "0")])
    # PGTune prints only settings with a (JavaScript-truthy) value.
    return {name: _js_number(value) for name, value in rows if value}


# ---------------------------------------------------------------------------
# Container-aware settings
# ---------------------------------------------------------------------------

#: Settings whose value is an amount of memory.  Overrides for them must carry
#: a unit (a bare number means 8kB pages for some, kB or MB for others) and are
#: rewritten in PGTune's kB/MB/GB style, which postgresql.conf accepts.
MEMORY_SETTINGS = frozenset(
    {
        "shared_buffers",
        "effective_cache_size",
        "maintenance_work_mem",
        "work_mem",
        "wal_buffers",
        "autovacuum_work_mem",
        "logical_decoding_work_mem",
        "temp_buffers",
        "min_wal_size",
        "max_wal_size",
        "wal_keep_size",
        "max_stack_depth",
        "temp_file_limit",
    }
)
#: Memory settings for which PostgreSQL gives ``-1`` a meaning.
_MINUS_ONE_OK = frozenset({"wal_buffers", "autovacuum_work_mem", "temp_file_limit", "logical_decoding_work_mem"})

#: PostgreSQL 15 defaults, used by the checks when a setting is neither
#: computed nor overridden (or an override removed it).
PG_DEFAULTS = {
    "max_connections": "100",
    "shared_buffers": "128MB",
    "work_mem": "4MB",
    "maintenance_work_mem": "64MB",
    "autovacuum_work_mem": "-1",
    "autovacuum_max_workers": "3",
    "wal_buffers": "-1",
    "effective_cache_size": "4GB",
    "min_wal_size": "80MB",
    "max_wal_size": "1GB",
    "superuser_reserved_connections": "3",
    "reserved_connections": "0",
}

_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$")


def _override_value(name, value):
    """Turn one override into the string postgresql.conf gets."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if name in MEMORY_SETTINGS:
        if isinstance(value, (int, float)) or (isinstance(value, str) and re.fullmatch(r"\s*-?\d+(\.\d+)?\s*", value)):
            if name in _MINUS_ONE_OK and str(value).strip() == "-1":
                return "-1"
            raise PgTuneError(
                f"override {name}={value!r} needs a unit, e.g. '64MB' or '2GB': a bare number means "
                "8kB pages for some memory settings and kB or MB for others"
            )
        try:
            size = parse_size(value, f"override {name}")
        except UnitError as exc:
            raise PgTuneError(str(exc)) from exc
        if size % KIB:
            raise PgTuneError(f"override {name}={value!r} is not a whole number of kB; PostgreSQL's smallest memory unit is kB")
        return format_pg_kb(size // KIB)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PgTuneError(f"override {name}={value!r} is not a finite number")
        return _js_number(value)
    if isinstance(value, str):
        text = value.strip()
        if "\n" in text or "\r" in text or "\x00" in text:
            raise PgTuneError(f"override {name} contains a line break; postgresql.conf values are one line")
        return text
    raise PgTuneError(f"override {name} is a {type(value).__name__}; give a string, number or boolean")


def _conf_bytes(settings, name):
    """Bytes of a memory setting from the merged strings (PG defaults if absent)."""
    return parse_size(settings.get(name, PG_DEFAULTS[name]), name)


def _conf_int(settings, name):
    return parse_int(settings.get(name, PG_DEFAULTS[name]), name)


def _wal_buffers_bytes(settings, shared_buffers):
    text = settings.get("wal_buffers", PG_DEFAULTS["wal_buffers"])
    if text == "-1":  # PostgreSQL: 1/32 of shared_buffers, 64kB..16MB
        return min(max(shared_buffers // 32, 64 * KIB), 16 * MIB)
    return parse_size(text, "wal_buffers")


def pg_settings(
    memory_limit,
    overrides=None,
    pgbouncer_pool_size=None,
    pgbouncer_reserve_pool_size=None,
    db_type="web",
    cpus=None,
    max_connections=None,
    storage="ssd",
    pg_version=DEFAULT_PG_VERSION,
    os_type="linux",
    db_size="mid_ram",
):
    """PGTune for a container's memory limit, merged with overrides, then checked.

    ``memory_limit`` is the container's ``mem_limit`` (``"32g"``).  ``cpus`` is
    the container's Docker ``cpus`` (``"2.0"``), rounded up to whole CPUs.
    ``overrides`` maps setting names to values; ``None`` removes a setting.
    Returns an ordered ``{name: str}`` dict: PGTune's settings in PGTune's
    order, then settings only the overrides name, in their order.
    Raises :class:`PgTuneError` when the result is not coherent (see
    :func:`check_settings`).
    """
    limit = _memory_bytes(memory_limit, "memory_limit")
    if overrides is None:
        overrides = {}
    if not isinstance(overrides, Mapping):
        raise PgTuneError(f"overrides must be a dict of postgresql.conf settings, not {type(overrides).__name__}")
    clean = {}
    for raw_name, value in overrides.items():
        name = str(raw_name).strip().lower()
        if not _NAME_RE.match(name):
            raise PgTuneError(f"override {raw_name!r} is not a postgresql.conf setting name")
        clean[name] = None if value is None else _override_value(name, value)

    if cpus is not None:
        try:
            cpu_amount = parse_cpus(cpus, "cpus")
        except UnitError as exc:
            raise PgTuneError(str(exc)) from exc
        if cpu_amount <= 0:
            raise PgTuneError("cpus must be above 0; give the container's Docker cpus limit, e.g. '2.0'")
        cpus = math.ceil(cpu_amount)

    if clean.get("max_connections") is not None:
        try:
            from_override = parse_int(clean["max_connections"], "override max_connections")
        except UnitError as exc:
            raise PgTuneError(str(exc)) from exc
        if max_connections is not None and parse_int(max_connections, "max_connections") != from_override:
            raise PgTuneError(
                f"max_connections is given twice, {max_connections} as an option and {from_override} in overrides; give it once"
            )
        max_connections = from_override

    settings = pgtune(
        limit,
        db_type=db_type,
        cpus=cpus,
        max_connections=max_connections,
        storage=storage,
        pg_version=pg_version,
        os_type=os_type,
        db_size=db_size,
    )
    for name, value in clean.items():
        if value is None:
            settings.pop(name, None)
        else:
            settings[name] = value
    check_settings(
        settings,
        limit,
        pgbouncer_pool_size,
        pgbouncer_reserve_pool_size,
        pg_version=parse_int(pg_version, "pg_version"),
    )
    return settings


def check_settings(
    settings,
    limit,
    pgbouncer_pool_size=None,
    pgbouncer_reserve_pool_size=None,
    pg_version=DEFAULT_PG_VERSION,
):
    """Refuse settings that do not fit a container of ``limit`` bytes.

    Checks, each with PostgreSQL's default for a setting that is absent:

    1. ``shared_buffers`` < the limit.
    2. ``effective_cache_size`` <= the limit (the page cache a container
       uses is charged to its memory limit).
    3. ``min_wal_size`` <= ``max_wal_size``.
    4. Memory budget: ``shared_buffers + wal_buffers + max_connections *
       work_mem + maintenance_work_mem + autovacuum_max_workers *
       autovacuum_work_mem`` (``maintenance_work_mem`` when -1; at most 1GB
       per worker before PostgreSQL 17, whose VACUUM cannot use more for
       dead tuples) <= the limit: every connection running one
       work_mem-sized sort or hash while one maintenance command and all
       autovacuum workers run.  PGTune's own
       sizing assumes up to three work_mem per connection out of the memory
       left after shared_buffers; one each is the least a busy server needs.
    5. With ``pgbouncer_pool_size``: ``max_connections >= pool +
       reserve + superuser_reserved_connections (+ reserved_connections)``.
       Pass the pool summed over PgBouncer's (database, user) pairs.
    """
    problems = []
    try:
        shared_buffers = _conf_bytes(settings, "shared_buffers")
        effective_cache = _conf_bytes(settings, "effective_cache_size")
        work_mem = _conf_bytes(settings, "work_mem")
        maintenance = _conf_bytes(settings, "maintenance_work_mem")
        min_wal = _conf_bytes(settings, "min_wal_size")
        max_wal = _conf_bytes(settings, "max_wal_size")
        wal_buffers = _wal_buffers_bytes(settings, shared_buffers)
        autovacuum_text = settings.get("autovacuum_work_mem", PG_DEFAULTS["autovacuum_work_mem"])
        autovacuum_setting = maintenance if autovacuum_text == "-1" else parse_size(autovacuum_text, "autovacuum_work_mem")
        autovacuum_mem = autovacuum_setting
        if pg_version < 17:  # VACUUM's dead-tuple store was limited to 1GB until PostgreSQL 17
            autovacuum_mem = min(autovacuum_setting, GIB)
        autovacuum_workers = _conf_int(settings, "autovacuum_max_workers")
        connections = _conf_int(settings, "max_connections")
        superuser_reserved = _conf_int(settings, "superuser_reserved_connections")
        reserved = _conf_int(settings, "reserved_connections")
    except UnitError as exc:
        raise PgTuneError(f"cannot check the settings: {exc}") from exc

    limit_text = human_size(limit)
    if shared_buffers >= limit:
        problems.append(
            f"shared_buffers {human_size(shared_buffers)} is not below the container memory limit "
            f"{limit_text}; lower shared_buffers (PGTune gives 25% of the limit) or raise the limit"
        )
    if effective_cache > limit:
        problems.append(
            f"effective_cache_size {human_size(effective_cache)} is above the container memory limit "
            f"{limit_text}, and a container's page cache counts against its limit; use at most the "
            "limit (PGTune gives 75%)"
        )
    if min_wal > max_wal:
        problems.append(
            f"min_wal_size {human_size(min_wal)} is above max_wal_size {human_size(max_wal)}; raise max_wal_size or lower min_wal_size"
        )
    autovacuum_note = ""
    if autovacuum_mem < autovacuum_setting:
        autovacuum_note = f" (VACUUM uses at most 1GiB of autovacuum_work_mem {human_size(autovacuum_setting)} before PostgreSQL 17)"
    budget = shared_buffers + wal_buffers + connections * work_mem + maintenance + autovacuum_workers * autovacuum_mem
    if budget > limit:
        detail = ", ".join(
            [
                f"shared_buffers {human_size(shared_buffers)}",
                f"wal_buffers {human_size(wal_buffers)}",
                (f"max_connections {connections} x work_mem {human_size(work_mem)} = {human_size(connections * work_mem)}"),
                f"maintenance_work_mem {human_size(maintenance)}",
                (
                    f"autovacuum_max_workers {autovacuum_workers} x {human_size(autovacuum_mem)} = "
                    f"{human_size(autovacuum_workers * autovacuum_mem)}{autovacuum_note}"
                ),
            ]
        )
        problems.append(
            f"the settings can use {human_size(budget)} ({detail}), more than the container memory "
            f"limit {limit_text}; lower work_mem or max_connections (PgBouncer multiplexes clients), "
            "or raise the limit"
        )
    if pgbouncer_reserve_pool_size is not None and pgbouncer_pool_size is None:
        problems.append("pgbouncer_reserve_pool_size is given without pgbouncer_pool_size; give both")
    if pgbouncer_pool_size is not None:
        try:
            pool = parse_int(pgbouncer_pool_size, "pgbouncer_pool_size", 0)
            reserve = 0 if pgbouncer_reserve_pool_size is None else parse_int(pgbouncer_reserve_pool_size, "pgbouncer_reserve_pool_size", 0)
        except UnitError as exc:
            raise PgTuneError(str(exc)) from exc
        needed = pool + reserve + superuser_reserved + reserved
        if connections < needed:
            reserved_text = f" + reserved_connections {reserved}" if reserved else ""
            problems.append(
                f"max_connections {connections} leaves no room for PgBouncer: default_pool_size {pool} "
                f"+ reserve_pool_size {reserve} + superuser_reserved_connections {superuser_reserved}"
                f"{reserved_text} = {needed}; raise max_connections to at least {needed} or shrink the pools"
            )
    if problems:
        raise PgTuneError("; ".join(problems))
