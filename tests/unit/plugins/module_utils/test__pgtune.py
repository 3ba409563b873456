"""Unit tests for plugins/module_utils/_pgtune.py.

Expected values are derived by hand from PGTune's formulas at commit
7caef27c204d304623eda21f23e7d56c1ad78d36 (configurationSlice.js); each
comment names the formula.  ``kb`` is the memory in kB (bytes / 1024).
"""

from __future__ import annotations

import pytest
from ansible_collections.connect.platform.plugins.module_utils._pgtune import (
    DB_SIZES,
    DB_TYPES,
    OS_TYPES,
    PG_VERSIONS,
    PGTUNE_COMMIT,
    STORAGE_TYPES,
    PgTuneError,
    check_settings,
    pg_settings,
    pgtune,
)
from ansible_collections.connect.platform.plugins.module_utils._units import (
    GIB,
    KIB,
    MIB,
    parse_size,
)
from hypothesis import assume, given, settings
from hypothesis import strategies as st

# ---------------------------------------------------------------------------
# pgtune: whole outputs, derived by hand
# ---------------------------------------------------------------------------

CASES = [
    pytest.param(
        # The example: 32 GB, 16 CPUs, 100 connections, SSD, web, PG 15, Linux.
        "32GB",
        {"cpus": 16, "max_connections": 100, "storage": "ssd", "db_type": "web", "pg_version": 15},
        {
            "max_connections": "100",  # given
            "shared_buffers": "8GB",  # floor(kb/4) = 8388608 kB
            "effective_cache_size": "24GB",  # floor(kb*3/4) = 25165824 kB
            "maintenance_work_mem": "2GB",  # floor(kb/16) = 2097152 kB, under the 8GB cap
            "checkpoint_completion_target": "0.9",  # constant
            "wal_buffers": "16MB",  # floor(3*8388608/100) = 251658 kB, capped at 16MB
            "default_statistics_target": "100",  # web
            "random_page_cost": "1.1",  # ssd, not dw
            "effective_io_concurrency": "200",  # linux ssd
            # (kb - shared_buffers) / ((conn + cpus) * 3) = 25165824 / 348 = 72315.58 -> floor
            "work_mem": "72315kB",
            "huge_pages": "try",  # shared_buffers >= 2GB
            "jit": "off",  # PG >= 12 and web
            "wal_compression": "lz4",  # PG >= 15
            "autovacuum_max_workers": "4",  # cpus >= 16 (and < 32)
            "autovacuum_work_mem": "2GB",  # maintenance_work_mem >= 2GB -> 2GB
            "min_wal_size": "1GB",  # web
            "max_wal_size": "4GB",  # web
            "max_worker_processes": "16",  # cpus
            "max_parallel_workers_per_gather": "4",  # ceil(16/2) = 8, capped at 4 (not dw)
            "max_parallel_workers": "16",  # cpus, PG >= 10
            "max_parallel_maintenance_workers": "4",  # min(ceil(16/2), 4), PG >= 11
        },
        id="issue-example-32GB-16cpu-100conn-ssd-web-pg15",
    ),
    pytest.param(
        # PGTune's least memory, nothing else given: web defaults to 200 connections.
        "512MB",
        {},
        {
            "max_connections": "200",  # web default
            "shared_buffers": "128MB",  # 524288/4 = 131072 kB
            "effective_cache_size": "384MB",  # 524288*3/4 = 393216 kB
            "maintenance_work_mem": "32MB",  # 524288/16 = 32768 kB
            "checkpoint_completion_target": "0.9",
            "wal_buffers": "3932kB",  # floor(3*131072/100) = floor(3932.16)
            "default_statistics_target": "100",
            "random_page_cost": "1.1",
            "effective_io_concurrency": "200",
            # (524288-131072)/((200+8)*3) = 630.15 -> 630, below the 4MB floor -> 4096 kB
            "work_mem": "4MB",
            "huge_pages": "off",  # shared_buffers < 2GB
            "jit": "off",
            "wal_compression": "lz4",
            "min_wal_size": "1GB",
            "max_wal_size": "4GB",
        },
        id="512MB-defaults",
    ),
    pytest.param(
        # Data warehouse, 64 GB, 32 CPUs, HDD, PostgreSQL 18 on Linux.
        "64GB",
        {"db_type": "dw", "cpus": 32, "storage": "hdd", "pg_version": 18},
        {
            "max_connections": "40",  # dw default
            "shared_buffers": "16GB",  # 67108864/4 = 16777216 kB
            "effective_cache_size": "48GB",  # 67108864*3/4
            "maintenance_work_mem": "8GB",  # dw: kb/8 = 8388608 kB = the 8GB cap
            "checkpoint_completion_target": "0.9",
            "wal_buffers": "16MB",  # capped
            "default_statistics_target": "500",  # dw
            "random_page_cost": "4",  # hdd -> 4 (JavaScript prints 4, not 4.0)
            "effective_io_concurrency": "2",  # hdd
            # (67108864-16777216)/((40+32)*3) = 233016.89; dw halves: 116508.44 -> 116508
            "work_mem": "116508kB",
            "huge_pages": "try",
            # jit not printed for dw
            "wal_compression": "lz4",
            "autovacuum_max_workers": "5",  # cpus >= 32
            "autovacuum_work_mem": "2GB",  # maintenance 8GB >= 2GB
            "io_method": "io_uring",  # PG >= 18 on Linux; no io_workers with io_uring
            "min_wal_size": "4GB",  # dw
            "max_wal_size": "16GB",  # dw
            "max_worker_processes": "32",
            "max_parallel_workers_per_gather": "16",  # ceil(32/2), no cap for dw
            "max_parallel_workers": "32",
            "max_parallel_maintenance_workers": "4",  # min(16, 4)
        },
        id="64GB-dw-32cpu-hdd-pg18",
    ),
    pytest.param(
        # Desktop on Windows, PG 11, 4 CPUs, SAN, database smaller than RAM.
        "8GB",
        {"db_type": "desktop", "os_type": "windows", "pg_version": 11, "cpus": 4, "storage": "san", "db_size": "less_ram"},
        {
            "max_connections": "20",  # desktop default
            "shared_buffers": "512MB",  # desktop: kb/16 = 524288 kB
            "effective_cache_size": "2GB",  # desktop: kb/4
            "maintenance_work_mem": "512MB",  # kb/16, under the Windows 2GB cap
            "checkpoint_completion_target": "0.9",
            # floor(3*524288/100) = 15728 kB: between 14MB and 16MB -> rounded up to 16MB
            "wal_buffers": "16MB",
            "default_statistics_target": "100",
            "random_page_cost": "1.1",  # less_ram -> 1.1 whatever the storage
            # effective_io_concurrency only on Linux
            # (8388608-524288)/((20+4)*3) = 109226.67; desktop /6 = 18204.44 -> 18204;
            # less_ram *1.3 = 23665.2 -> 23665
            "work_mem": "23665kB",
            "huge_pages": "off",  # shared_buffers < 2GB
            # no jit for desktop
            "wal_compression": "on",  # PG 10-14
            # autovacuum settings: cpus < 16, maintenance < 2GB
            "min_wal_size": "100MB",  # desktop
            "max_wal_size": "2GB",  # desktop
            "max_worker_processes": "4",
            "max_parallel_workers_per_gather": "2",  # ceil(4/2)
            "max_parallel_workers": "4",
            "max_parallel_maintenance_workers": "2",  # PG >= 11: min(ceil(4/2), 4)
            "wal_level": "minimal",  # desktop
            "max_wal_senders": "0",  # required by wal_level minimal
        },
        id="8GB-desktop-windows-pg11-4cpu-san-less_ram",
    ),
    pytest.param(
        # OLTP on Windows, PG 17, no CPUs given, database much larger than RAM.
        "64GB",
        {"db_type": "oltp", "os_type": "windows", "pg_version": 17, "db_size": "greater_ram"},
        {
            "max_connections": "300",  # oltp default
            "shared_buffers": "16GB",
            "effective_cache_size": "48GB",
            # kb/16 = 4GB >= the Windows (PG <= 17) 2GB cap -> 2GB - 1MB = 2096128 kB
            "maintenance_work_mem": "2047MB",
            "checkpoint_completion_target": "0.9",
            "wal_buffers": "16MB",
            "default_statistics_target": "100",
            "random_page_cost": "1.1",
            # (67108864-16777216)/((300+8)*3) = 54471.48 -> 54471; greater_ram *0.9 = 49023.9 -> 49023
            "work_mem": "49023kB",
            "huge_pages": "try",
            "jit": "off",
            "wal_compression": "lz4",
            # autovacuum_work_mem: 2047MB < 2GB, so not printed
            "min_wal_size": "2GB",  # oltp
            "max_wal_size": "8GB",  # oltp
        },
        id="64GB-oltp-windows-pg17-greater_ram",
    ),
    pytest.param(
        # Mixed on macOS, PG 18, 20 CPUs, NVMe.
        "16GB",
        {"db_type": "mixed", "os_type": "mac", "pg_version": 18, "cpus": 20, "storage": "nvme"},
        {
            "max_connections": "100",  # mixed default
            "shared_buffers": "4GB",
            "effective_cache_size": "12GB",
            "maintenance_work_mem": "1GB",  # kb/16
            "checkpoint_completion_target": "0.9",
            "wal_buffers": "16MB",
            "default_statistics_target": "100",
            "random_page_cost": "1.1",
            # (16777216-4194304)/((100+20)*3) = 34952.53; mixed /2 = 17476.27 -> 17476
            "work_mem": "17476kB",
            "huge_pages": "off",  # always off on mac
            "jit": "off",
            "wal_compression": "lz4",
            "autovacuum_max_workers": "4",  # cpus >= 16
            "io_method": "worker",  # PG 18, not Linux
            "io_workers": "5",  # min(32, max(3, floor(20/4))) = 5 > 3
            "min_wal_size": "1GB",
            "max_wal_size": "4GB",
            "max_worker_processes": "20",
            "max_parallel_workers_per_gather": "4",  # ceil(20/2) = 10, capped at 4
            "max_parallel_workers": "20",
            "max_parallel_maintenance_workers": "4",
        },
        id="16GB-mixed-mac-pg18-20cpu-nvme",
    ),
    pytest.param(
        # PG 10, 1 GB, 4 CPUs, HDD.
        "1GB",
        {"pg_version": 10, "cpus": 4, "storage": "hdd"},
        {
            "max_connections": "200",
            "shared_buffers": "256MB",
            "effective_cache_size": "768MB",
            "maintenance_work_mem": "64MB",
            "checkpoint_completion_target": "0.9",
            "wal_buffers": "7864kB",  # floor(3*262144/100) = floor(7864.32)
            "default_statistics_target": "100",
            "random_page_cost": "4",  # hdd
            "effective_io_concurrency": "2",  # hdd
            "work_mem": "4MB",  # 786432/((200+4)*3) = 1285 -> the 4MB floor
            "huge_pages": "off",
            # no jit before PG 12
            "wal_compression": "on",
            "min_wal_size": "1GB",
            "max_wal_size": "4GB",
            "max_worker_processes": "4",
            "max_parallel_workers_per_gather": "2",
            "max_parallel_workers": "4",  # PG >= 10
            # no max_parallel_maintenance_workers before PG 11
        },
        id="1GB-web-pg10-4cpu-hdd",
    ),
    pytest.param(
        # The seed's PostgreSQL container: 32g, 2 CPUs (no parallel settings), NVMe, 100 connections.
        "32g",
        {"cpus": 2, "storage": "nvme", "max_connections": 100},
        {
            "max_connections": "100",
            "shared_buffers": "8GB",
            "effective_cache_size": "24GB",
            "maintenance_work_mem": "2GB",
            "checkpoint_completion_target": "0.9",
            "wal_buffers": "16MB",
            "default_statistics_target": "100",
            "random_page_cost": "1.1",
            "effective_io_concurrency": "1000",  # nvme
            "work_mem": "77672kB",  # 25165824/((100+8)*3) = 77672.3: cpus < 4 counts 8 workers
            "huge_pages": "try",
            "jit": "off",
            "wal_compression": "lz4",
            "autovacuum_work_mem": "2GB",
            "min_wal_size": "1GB",
            "max_wal_size": "4GB",
        },
        id="seed-container-32g-2cpu-nvme-100conn",
    ),
]


@pytest.mark.parametrize(("memory", "options", "expected"), CASES)
def test_pgtune_whole_output(memory, options, expected):
    result = pgtune(memory, **options)
    assert result == expected
    # PGTune's print order, too
    assert list(result) == list(expected)


def test_commit_recorded():
    assert PGTUNE_COMMIT == "7caef27c204d304623eda21f23e7d56c1ad78d36"
    import ansible_collections.connect.platform.plugins.module_utils._pgtune as module

    assert PGTUNE_COMMIT in module.__doc__


@pytest.mark.parametrize("memory", ["32GB", "32g", "32G", "32gb", "32GiB", "32768MB", "32768m", 32 * GIB, str(32 * GIB), 32 * GIB * 1.0])
def test_memory_spellings_agree(memory):
    assert pgtune(memory, cpus=16) == pgtune("32GB", cpus=16)


@pytest.mark.parametrize(("db_type", "expected"), [("web", "200"), ("oltp", "300"), ("dw", "40"), ("desktop", "20"), ("mixed", "100")])
def test_default_connections(db_type, expected):
    # PGTune's selectMaxConnections defaults
    assert pgtune("4GB", db_type=db_type)["max_connections"] == expected


@pytest.mark.parametrize(
    ("storage", "db_type", "db_size", "expected"),
    [
        # random_page_cost: less_ram -> 1.1; else hdd -> 4; else dw -> 4; else 1.1
        ("ssd", "web", "mid_ram", "1.1"),
        ("nvme", "oltp", "greater_ram", "1.1"),
        ("san", "mixed", "mid_ram", "1.1"),
        ("hdd", "web", "mid_ram", "4"),
        ("hdd", "web", "less_ram", "1.1"),
        ("ssd", "dw", "mid_ram", "4"),
        ("nvme", "dw", "greater_ram", "4"),
        ("nvme", "dw", "less_ram", "1.1"),
    ],
)
def test_random_page_cost(storage, db_type, db_size, expected):
    assert pgtune("4GB", storage=storage, db_type=db_type, db_size=db_size)["random_page_cost"] == expected


@pytest.mark.parametrize(
    ("storage", "os_type", "expected"),
    [
        ("hdd", "linux", "2"),
        ("ssd", "linux", "200"),
        ("san", "linux", "300"),
        ("nvme", "linux", "1000"),
        ("nvme", "windows", None),
        ("ssd", "mac", None),
    ],
)
def test_effective_io_concurrency(storage, os_type, expected):
    assert pgtune("4GB", storage=storage, os_type=os_type).get("effective_io_concurrency") == expected


@pytest.mark.parametrize(
    ("memory", "expected"),
    [
        # wal_buffers = floor(3% of shared_buffers), <= 16MB, 14MB..16MB rounds up to 16MB
        ("512MB", "3932kB"),  # 3% of 131072
        ("1GB", "7864kB"),  # 3% of 262144
        ("1900MB", "16MB"),  # 3% of 486400 = 14592 kB, between 14MB and 16MB -> 16MB
        ("1800MB", "13824kB"),  # 3% of 460800 = 13824 kB, below 14MB, kept
        ("2GB", "16MB"),  # 3% of 524288 = 15728 kB, above 14MB -> 16MB
        ("64GB", "16MB"),  # capped
    ],
)
def test_wal_buffers(memory, expected):
    assert pgtune(memory)["wal_buffers"] == expected


@pytest.mark.parametrize(
    ("cpus", "present"),
    [
        (None, False),
        (1, False),
        (3, False),  # parallel settings need cpus >= 4
        (4, True),
    ],
)
def test_parallel_settings_need_four_cpus(cpus, present):
    result = pgtune("8GB", cpus=cpus)
    assert ("max_worker_processes" in result) is present
    assert ("max_parallel_workers_per_gather" in result) is present


@pytest.mark.parametrize(("cpus", "expected"), [(15, None), (16, "4"), (31, "4"), (32, "5"), (64, "5")])
def test_autovacuum_max_workers(cpus, expected):
    assert pgtune("8GB", cpus=cpus).get("autovacuum_max_workers") == expected


@pytest.mark.parametrize(
    ("memory", "expected"),
    [
        # autovacuum_work_mem: 2GB when maintenance_work_mem (kb/16) >= 2GB
        ("31GB", None),  # maintenance 1984MB
        ("32GB", "2GB"),  # maintenance exactly 2GB
        ("256GB", "2GB"),  # maintenance capped at 8GB
    ],
)
def test_autovacuum_work_mem(memory, expected):
    assert pgtune(memory).get("autovacuum_work_mem") == expected


@pytest.mark.parametrize(
    ("version", "jit", "compression", "io_method"),
    [
        (10, None, "on", None),
        (11, None, "on", None),
        (12, "off", "on", None),
        (14, "off", "on", None),
        (15, "off", "lz4", None),
        (17, "off", "lz4", None),
        (18, "off", "lz4", "io_uring"),
    ],
)
def test_version_dependent_settings(version, jit, compression, io_method):
    result = pgtune("8GB", pg_version=version)
    assert result.get("jit") == jit
    assert result.get("wal_compression") == compression
    assert result.get("io_method") == io_method


@pytest.mark.parametrize(
    ("cpus", "expected"),
    # io_workers (PG 18 off Linux): min(32, max(3, floor(cpus/4))), printed only when > 3
    [(None, None), (12, None), (15, None), (16, "4"), (200, "32")],
)
def test_io_workers(cpus, expected):
    assert pgtune("8GB", pg_version=18, os_type="windows", cpus=cpus).get("io_workers") == expected


def test_io_workers_not_with_io_uring():
    assert "io_workers" not in pgtune("8GB", pg_version=18, os_type="linux", cpus=64)


def test_maintenance_cap():
    # maintenance_work_mem = floor(kb/16), capped at 8GB (>= cap -> cap)
    assert pgtune("128GB")["maintenance_work_mem"] == "8GB"
    assert pgtune("127GB")["maintenance_work_mem"] == "8128MB"
    # dw: kb/8
    assert pgtune("32GB", db_type="dw")["maintenance_work_mem"] == "4GB"


def test_non_whole_kb_memory_uses_the_same_formulas():
    # PGTune only takes whole MB/GB/TB; 1 byte more than 1GB gives a fractional kB total
    # and the floors land on the same integers.
    assert pgtune(GIB + 1) == pgtune("1GB")


# ---------------------------------------------------------------------------
# pgtune: bad input
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("memory", "options", "message"),
    [
        (0, {}, "not positive"),
        ("0GB", {}, "not positive"),
        (-1, {}, "is negative"),
        ("-32GB", {}, "is negative"),
        ("511MB", {}, "below 512MB, the least PGTune accepts"),
        ("32XB", {}, "unknown unit 'XB'"),
        ("lots", {}, "is not a size"),
        (None, {}, "is not a size"),
        ("1000000TB", {}, "above 999999TB"),
        ("32GB", {"db_type": "analytics"}, "db_type 'analytics' is not one PGTune knows; use one of: web, oltp, dw, desktop, mixed"),
        ("32GB", {"storage": "ramdisk"}, "storage 'ramdisk' is not one PGTune knows; use one of: ssd, hdd, san, nvme"),
        ("32GB", {"os_type": "bsd"}, "os_type 'bsd' is not one PGTune knows"),
        ("32GB", {"db_size": "huge"}, "db_size 'huge' is not one PGTune knows"),
        ("32GB", {"db_type": None}, "db_type None is not one PGTune knows"),
        ("32GB", {"max_connections": 19}, "max_connections 19 is below 20, the least PGTune accepts"),
        ("32GB", {"max_connections": 0}, "max_connections 0 is below 20"),
        ("32GB", {"max_connections": -5}, "max_connections -5 is below 20"),
        ("32GB", {"max_connections": 1000000}, "above 999999"),
        ("32GB", {"max_connections": "many"}, "max_connections 'many' is not a whole number"),
        ("32GB", {"cpus": 0}, "cpus 0 is too small; it must be at least 1"),
        ("32GB", {"cpus": 2.5}, "cpus 2.5 is not a whole number"),
        ("32GB", {"pg_version": 9}, "pg_version 9 is not one PGTune tunes; use one of 10..18"),
        ("32GB", {"pg_version": 19}, "pg_version 19 is not one PGTune tunes"),
        ("32GB", {"pg_version": "fifteen"}, "pg_version 'fifteen' is not a whole number"),
    ],
)
def test_pgtune_refuses(memory, options, message):
    with pytest.raises(PgTuneError) as info:
        pgtune(memory, **options)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_choices_are_case_insensitive_and_strings_accepted():
    assert pgtune("32GB", db_type="WEB", storage=" SSD ", cpus="16", max_connections="100", pg_version="15") == pgtune(
        "32GB", cpus=16, max_connections=100
    )


# ---------------------------------------------------------------------------
# pgtune: properties
# ---------------------------------------------------------------------------

_memory_mb = st.integers(min_value=512, max_value=4 * 1024 * 1024)  # 512MB .. 4TB, whole MB as PGTune
_options = st.fixed_dictionaries(
    {
        "db_type": st.sampled_from(DB_TYPES),
        "cpus": st.one_of(st.none(), st.integers(min_value=1, max_value=256)),
        "max_connections": st.one_of(st.none(), st.integers(min_value=20, max_value=5000)),
        "storage": st.sampled_from(STORAGE_TYPES),
        "pg_version": st.sampled_from(PG_VERSIONS),
        "os_type": st.sampled_from(OS_TYPES),
        "db_size": st.sampled_from(DB_SIZES),
    }
)


def _bytes(result, name):
    return parse_size(result[name])


@given(memory_mb=_memory_mb, options=_options)
def test_bounds(memory_mb, options):
    memory = memory_mb * MIB
    result = pgtune(memory, **options)
    assert all(isinstance(value, str) and value for value in result.values())
    shared = _bytes(result, "shared_buffers")
    assert 0 < shared <= memory // 4
    assert shared < memory
    assert _bytes(result, "effective_cache_size") <= memory * 3 // 4
    assert _bytes(result, "maintenance_work_mem") <= 8 * GIB
    assert 32 * KIB <= _bytes(result, "wal_buffers") <= 16 * MIB
    assert _bytes(result, "work_mem") >= 4 * MIB
    assert _bytes(result, "min_wal_size") < _bytes(result, "max_wal_size")
    assert result["huge_pages"] in ("try", "off")
    assert int(result["max_connections"]) >= 20
    if options["max_connections"]:
        assert int(result["max_connections"]) == options["max_connections"]
    if options["os_type"] == "windows" and options["pg_version"] <= 17:
        assert _bytes(result, "maintenance_work_mem") < 2 * GIB
        assert _bytes(result, "work_mem") < 2 * GIB
    if "max_parallel_workers_per_gather" in result and options["db_type"] != "dw":
        assert int(result["max_parallel_workers_per_gather"]) <= 4


@given(low=_memory_mb, high=_memory_mb, options=_options)
def test_more_memory_never_lowers_memory_settings(low, high, options):
    low, high = sorted((low, high))
    small, large = pgtune(low * MIB, **options), pgtune(high * MIB, **options)
    for name in ("shared_buffers", "effective_cache_size", "maintenance_work_mem", "work_mem", "wal_buffers"):
        assert _bytes(small, name) <= _bytes(large, name), name


@given(memory_mb=_memory_mb, options=_options, extra=st.integers(min_value=0, max_value=5000))
def test_more_connections_never_raise_work_mem(memory_mb, options, extra):
    fewer = dict(options, max_connections=options["max_connections"] or 20)
    more = dict(fewer, max_connections=fewer["max_connections"] + extra)
    assume(more["max_connections"] <= 999999)
    assert _bytes(pgtune(memory_mb * MIB, **more), "work_mem") <= _bytes(pgtune(memory_mb * MIB, **fewer), "work_mem")


@given(memory_mb=_memory_mb, options=_options, low=st.integers(8, 512), high=st.integers(8, 512))
def test_more_cpus_never_raise_work_mem(memory_mb, options, low, high):
    # from 8 CPUs up the worker count in the work_mem divisor is the CPU count
    # (below 4 PGTune counts PostgreSQL's default of 8 workers instead)
    low, high = sorted((low, high))
    first = pgtune(memory_mb * MIB, **dict(options, cpus=low))
    second = pgtune(memory_mb * MIB, **dict(options, cpus=high))
    assert _bytes(second, "work_mem") <= _bytes(first, "work_mem")


@given(gigabytes=st.integers(min_value=1, max_value=4096), options=_options)
def test_unit_spellings_give_the_same_settings(gigabytes, options):
    expected = pgtune(gigabytes * GIB, **options)
    assert pgtune(f"{gigabytes}GB", **options) == expected
    assert pgtune(f"{gigabytes}g", **options) == expected
    assert pgtune(f"{gigabytes * 1024}MB", **options) == expected


@given(memory_mb=_memory_mb, options=_options)
def test_shared_buffers_is_a_quarter(memory_mb, options):
    # independent restatement: floor(kB/4), or floor(kB/16) for desktop
    divisor = 16 if options["db_type"] == "desktop" else 4
    expected_kb = (memory_mb * 1024) // divisor
    assert _bytes(pgtune(memory_mb * MIB, **options), "shared_buffers") == expected_kb * KIB


# ---------------------------------------------------------------------------
# pg_settings: the container-aware layer
# ---------------------------------------------------------------------------

SEED_OVERRIDES = {
    # architecture document 4.4
    "work_mem": "64MB",
    "maintenance_work_mem": "2GB",
    "effective_io_concurrency": 256,
    "max_wal_size": "8GB",
    "random_page_cost": 1.1,
    "checkpoint_completion_target": 0.9,
    "log_min_duration_statement": 1000,
    "log_checkpoints": True,
    "log_connections": True,
    "log_disconnections": True,
}

SEED_EXPECTED = {
    "max_connections": "100",
    "shared_buffers": "8GB",  # 25% of the 32g limit, as the document says
    "effective_cache_size": "24GB",  # 75% of the limit
    "maintenance_work_mem": "2GB",
    "checkpoint_completion_target": "0.9",
    "wal_buffers": "16MB",
    "default_statistics_target": "100",
    "random_page_cost": "1.1",
    "effective_io_concurrency": "256",  # override of PGTune's nvme 1000
    "work_mem": "64MB",  # override of PGTune's 77672kB
    "huge_pages": "try",
    "jit": "off",
    "wal_compression": "lz4",
    "autovacuum_work_mem": "2GB",
    "min_wal_size": "1GB",
    "max_wal_size": "8GB",  # override of PGTune's 4GB
    "log_min_duration_statement": "1000",
    "log_checkpoints": "on",
    "log_connections": "on",
    "log_disconnections": "on",
}


def _seed(**changes):
    arguments = {
        "cpus": "2.0",
        "storage": "nvme",
        "max_connections": 100,
        "pg_version": 15,
        "pgbouncer_pool_size": 50,
        "pgbouncer_reserve_pool_size": 10,
        "overrides": dict(SEED_OVERRIDES),
    }
    arguments.update(changes)
    return pg_settings("32g", **arguments)


def test_seed_production_settings():
    result = _seed()
    assert result == SEED_EXPECTED
    assert list(result) == list(SEED_EXPECTED)


def test_seed_shared_buffers_and_cache_come_from_the_container_limit():
    result = pg_settings("32g")
    assert result["shared_buffers"] == "8GB"
    assert result["effective_cache_size"] == "24GB"


def test_no_overrides_is_pgtune():
    assert pg_settings("32g", cpus=16, max_connections=100) == pgtune("32GB", cpus=16, max_connections=100)


@pytest.mark.parametrize(
    ("cpus", "expected_workers"),
    [("2.0", None), (2, None), ("3.5", "4"), (0.5, None), ("16", "16")],
)
def test_container_cpus_are_rounded_up(cpus, expected_workers):
    assert pg_settings("32g", cpus=cpus).get("max_worker_processes") == expected_workers


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("work_mem", "64mb", "64MB"),  # PostgreSQL's units are case-sensitive: normalised
        ("work_mem", "65536kB", "64MB"),
        ("maintenance_work_mem", "2g", "2GB"),
        ("max_wal_size", "8192MB", "8GB"),
        ("work_mem", "1.5MB", "1536kB"),
        ("autovacuum_work_mem", -1, "-1"),
        ("autovacuum_work_mem", "-1", "-1"),
        ("log_checkpoints", True, "on"),
        ("jit", False, "off"),
        ("random_page_cost", 1.1, "1.1"),
        ("random_page_cost", 4.0, "4"),
        ("effective_io_concurrency", 256, "256"),
        ("shared_preload_libraries", " pg_stat_statements ", "pg_stat_statements"),
        ("pg_stat_statements.track", "all", "all"),
        ("Log_Line_Prefix", "%m [%p] ", "%m [%p]"),
    ],
)
def test_override_values_are_normalised(name, value, expected):
    result = pg_settings("32g", overrides={name: value})
    assert result[name.lower()] == expected


def test_override_none_removes_a_setting():
    result = pg_settings("32g", overrides={"huge_pages": None, "jit": None})
    assert "huge_pages" not in result
    assert "jit" not in result


def test_override_only_settings_follow_in_their_order():
    result = pg_settings("32g", overrides={"log_connections": True, "work_mem": "64MB", "log_checkpoints": True})
    assert list(result)[-2:] == ["log_connections", "log_checkpoints"]
    assert list(result).index("work_mem") == list(pgtune("32g")).index("work_mem")


def test_max_connections_override_feeds_pgtune_work_mem():
    # (kb - shared_buffers) / ((100 + 8) * 3) = 25165824 / 324 = 77672.3
    assert pg_settings("32g", overrides={"max_connections": 100})["work_mem"] == "77672kB"
    # web default of 200: 25165824 / 624 = 40329.2
    assert pg_settings("32g")["work_mem"] == "40329kB"
    assert pg_settings("32g", max_connections=100, overrides={"max_connections": "100"})["max_connections"] == "100"


@pytest.mark.parametrize(
    ("changes", "messages"),
    [
        (
            {"max_connections": 62},
            [
                (
                    "max_connections 62 leaves no room for PgBouncer: default_pool_size 50 + reserve_pool_size 10 "
                    "+ superuser_reserved_connections 3 = 63; raise max_connections to at least 63"
                )
            ],
        ),
        (
            {"overrides": dict(SEED_OVERRIDES, superuser_reserved_connections=41)},
            ["superuser_reserved_connections 41 = 101", "raise max_connections to at least 101"],
        ),
        (
            {"overrides": dict(SEED_OVERRIDES, reserved_connections=5, superuser_reserved_connections=36)},
            ["reserved_connections 5 = 101"],
        ),
        (
            {"pgbouncer_pool_size": None},
            ["pgbouncer_reserve_pool_size is given without pgbouncer_pool_size"],
        ),
        (
            {"overrides": dict(SEED_OVERRIDES, shared_buffers="32GB")},
            ["shared_buffers 32GiB is not below the container memory limit 32GiB"],
        ),
        (
            {"overrides": dict(SEED_OVERRIDES, effective_cache_size="40GB")},
            ["effective_cache_size 40GiB is above the container memory limit 32GiB"],
        ),
        (
            {"overrides": dict(SEED_OVERRIDES, max_wal_size="512MB")},
            ["min_wal_size 1GiB is above max_wal_size 512MiB"],
        ),
        (
            {"overrides": dict(SEED_OVERRIDES, work_mem="256MB")},
            [
                "max_connections 100 x work_mem 256MiB = 25GiB",
                "more than the container memory limit 32GiB; lower work_mem or max_connections",
            ],
        ),
        (
            {"overrides": dict(SEED_OVERRIDES, max_connections=100)},
            [],  # the same value twice is fine
        ),
        (
            {"overrides": dict(SEED_OVERRIDES, max_connections=200)},
            ["max_connections is given twice, 100 as an option and 200 in overrides; give it once"],
        ),
        ({"overrides": dict(SEED_OVERRIDES, work_mem=64)}, ["override work_mem=64 needs a unit, e.g. '64MB'"]),
        ({"overrides": dict(SEED_OVERRIDES, work_mem="64")}, ["override work_mem='64' needs a unit"]),
        ({"overrides": dict(SEED_OVERRIDES, work_mem="64XB")}, ["unknown unit 'XB'"]),
        ({"overrides": dict(SEED_OVERRIDES, work_mem="1000b")}, ["is not a whole number of kB"]),
        ({"overrides": {"work mem": "64MB"}}, ["override 'work mem' is not a postgresql.conf setting name"]),
        ({"overrides": {"search_path": ["a", "b"]}}, ["override search_path is a list"]),
        ({"overrides": {"log_line_prefix": "a\nb"}}, ["contains a line break"]),
        ({"overrides": {"random_page_cost": float("nan")}}, ["is not a finite number"]),
        ({"overrides": "work_mem=64MB"}, ["overrides must be a dict"]),
        ({"overrides": dict(SEED_OVERRIDES, superuser_reserved_connections="some")}, ["cannot check the settings"]),
        ({"cpus": 0}, ["cpus must be above 0"]),
        ({"cpus": "two"}, ["cpus 'two' is not a number of CPUs"]),
        ({"pgbouncer_pool_size": "fifty"}, ["pgbouncer_pool_size 'fifty' is not a whole number"]),
        ({"storage": "tape"}, ["storage 'tape' is not one PGTune knows"]),
    ],
)
def test_pg_settings_checks(changes, messages):
    if not messages:
        assert _seed(**changes) == SEED_EXPECTED
        return
    with pytest.raises(PgTuneError) as info:
        _seed(**changes)
    for message in messages:
        assert message in str(info.value)


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        (0, "memory_limit 0 is not positive"),
        ("-32g", "is negative"),
        ("256m", "below 512MB"),
        ("32 gigs", "unknown unit"),
    ],
)
def test_pg_settings_refuses_bad_limits(limit, message):
    with pytest.raises(PgTuneError, match="memory_limit") as info:
        pg_settings(limit)
    assert message in str(info.value)


def test_all_problems_reported_at_once():
    with pytest.raises(PgTuneError) as info:
        _seed(max_connections=20, overrides={"shared_buffers": "40GB"})
    text = str(info.value)
    assert "shared_buffers 40GiB" in text
    assert "leaves no room for PgBouncer" in text


# Memory budget boundary, built so the sum is exactly the 32GB limit:
# shared_buffers + wal_buffers + maintenance_work_mem + 3 autovacuum workers
# (PostgreSQL's default) x autovacuum_work_mem, plus 128 connections x work_mem.
_BOUNDARY = {
    "shared_buffers": "8GB",
    "wal_buffers": "2GB",
    "maintenance_work_mem": "2GB",
    "autovacuum_work_mem": "2GB",
    "max_connections": 128,
}


@pytest.mark.parametrize(
    ("pg_version", "work_mem", "fits"),
    [
        # PG 15: 8 + 2 + 2 + 3 x min(2GB, 1GB) = 15GB; 17GB left = 128 x 136MB
        (15, "136MB", True),
        (15, "139265kB", False),  # 1kB more per connection
        # PG 17: 8 + 2 + 2 + 3 x 2GB = 18GB; 14GB left = 128 x 112MB
        (17, "112MB", True),
        (17, "114689kB", False),
    ],
)
def test_memory_budget_boundary(pg_version, work_mem, fits):
    overrides = dict(_BOUNDARY, work_mem=work_mem)
    if fits:
        pg_settings("32g", pg_version=pg_version, overrides=overrides)
    else:
        with pytest.raises(PgTuneError, match="more than the container memory limit 32GiB"):
            pg_settings("32g", pg_version=pg_version, overrides=overrides)


def test_pgbouncer_boundary():
    # 50 + 10 + 3 = 63 connections are needed
    _seed(max_connections=63, overrides={})
    with pytest.raises(PgTuneError):
        _seed(max_connections=62, overrides={})


def test_wal_buffers_minus_one_is_a_sixteenth_capped():
    # -1: PostgreSQL takes 1/32 of shared_buffers, 64kB..16MB
    check_settings({"wal_buffers": "-1", "shared_buffers": "8GB"}, 32 * GIB)


@settings(max_examples=200)
@given(
    gigabytes=st.integers(min_value=32, max_value=1024),
    options=_options,
)
def test_pgtune_alone_fits_a_container_of_32gb_or_more(gigabytes, options):
    # PGTune's own output for a container passes every check, for up to 5000
    # connections only when the 4MB work_mem floor does not bind
    assume((options["max_connections"] or 300) <= 500)
    assume((options["cpus"] or 0) <= 64)
    assert pg_settings(f"{gigabytes}g", **options) == pgtune(gigabytes * GIB, **options)


@given(
    work_mb=st.integers(min_value=1, max_value=4096),
    connections=st.integers(min_value=20, max_value=2000),
)
def test_budget_check_agrees_with_its_formula(work_mb, connections):
    # restated independently: 8GB + 16MB + n x work_mem + 2GB + 3 x 1GB (PG 15) <= 32GB
    budget = 8 * GIB + 16 * MIB + connections * work_mb * MIB + 2 * GIB + 3 * GIB
    overrides = {"work_mem": f"{work_mb}MB", "max_connections": connections}
    if budget <= 32 * GIB:
        pg_settings("32g", overrides=overrides)
    else:
        with pytest.raises(PgTuneError, match="more than the container memory limit"):
            pg_settings("32g", overrides=overrides)


def test_wal_and_memory_units_are_binary():
    # 1GB in PGTune and here is 1024**3 bytes
    assert parse_size(pgtune("4GB")["shared_buffers"]) == GIB
