"""Unit tests for plugins/module_utils/_capacity.py.

The stack is the architecture document's 2.2/3.1 allocation; its table says
12 of 16 cores and 75 %, but its rows add up to 13 cores (81.3 %) and 76GB
(59.4 %), and 16 cores (100 %) with app3 in peak season (10.1).
"""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest
from ansible_collections.connect.platform.plugins.module_utils._capacity import (
    CapacityError,
    capacity_plan,
)
from ansible_collections.connect.platform.plugins.module_utils._units import GIB, MIB
from hypothesis import given
from hypothesis import strategies as st

SEED = {
    "nginx": {"cpus": "1.0", "mem_limit": "2g", "mem_reservation": "1g"},
    "app": {"cpus": "3.0", "mem_limit": "10g", "mem_reservation": "8g", "replicas": 2},
    "pgbouncer": {"cpus": "0.5", "mem_limit": "1g"},
    "postgres": {"cpus": "2.0", "mem_limit": "32g", "mem_reservation": "24g"},
    "redis-cache": {"cpus": "1.0", "mem_limit": "12g", "mem_reservation": "10g"},
    "redis-queue": {"cpus": "1.0", "mem_limit": "3g"},
    "scraper": {"cpus": "1.0", "mem_limit": "4g"},
    "grafana": {"cpus": "0.5", "mem_limit": "2g"},
}
HOST = {"host_cpus": 16, "host_memory": "128g"}


def seed(replicas=2):
    plan = copy.deepcopy(SEED)
    plan["app"]["replicas"] = replicas
    return plan


def test_seed_base_plan():
    result = capacity_plan(seed(2), **HOST)
    assert result["services"]["app"] == {
        "replicas": 2,
        "cpus": 3.0,
        "mem_limit": 10 * GIB,
        "mem_reservation": 8 * GIB,
        "total_cpus": 6.0,
        "total_mem_limit": 20 * GIB,
        "total_mem_reservation": 16 * GIB,
    }
    assert result["services"]["pgbouncer"] == {
        "replicas": 1,
        "cpus": 0.5,
        "mem_limit": GIB,
        "mem_reservation": 0,
        "total_cpus": 0.5,
        "total_mem_limit": GIB,
        "total_mem_reservation": 0,
    }
    assert list(result["services"]) == list(SEED)
    # 1 + 6 + 0.5 + 2 + 1 + 1 + 1 + 0.5 = 13 CPUs; 2 + 20 + 1 + 32 + 12 + 3 + 4 + 2 = 76GB;
    # reservations 1 + 16 + 24 + 10 = 51GB
    assert result["totals"] == {
        "cpus": 13.0,
        "mem_limit": 76 * GIB,
        "mem_reservation": 51 * GIB,
        "mem_limit_human": "76GiB",
        "mem_reservation_human": "51GiB",
    }
    assert result["host"] == {"cpus": 16.0, "memory": 128 * GIB, "memory_human": "128GiB"}
    assert result["ceiling"] == {
        "cpu_percent": 100.0,
        "memory_percent": 100.0,
        "cpus": 16.0,
        "memory": 128 * GIB,
        "memory_human": "128GiB",
    }
    # 13/16 = 81.25 -> 81.3 (half up); 76/128 = 59.375 -> 59.4; 51/128 = 39.84 -> 39.8
    assert result["utilisation"] == {"cpus_percent": 81.3, "mem_limit_percent": 59.4, "mem_reservation_percent": 39.8}
    assert result["buffer"] == {"cpus": 3.0, "memory": 52 * GIB, "memory_human": "52GiB"}
    assert result["headroom"] == result["buffer"]


def test_seed_peak_plan():
    result = capacity_plan(seed(3), **HOST)
    # 13 + 3 = 16 CPUs, 76 + 10 = 86GB, 51 + 8 = 59GB reserved
    assert result["totals"]["cpus"] == 16.0
    assert result["totals"]["mem_limit"] == 86 * GIB
    assert result["totals"]["mem_reservation"] == 59 * GIB
    assert result["utilisation"] == {"cpus_percent": 100.0, "mem_limit_percent": 67.2, "mem_reservation_percent": 46.1}
    assert result["buffer"] == {"cpus": 0.0, "memory": 42 * GIB, "memory_human": "42GiB"}


@pytest.mark.parametrize(
    ("replicas", "percent", "passes"),
    [
        (2, 75, False),  # the document's 75 % ceiling: 13 > 12
        (2, 81.2, False),
        (2, 81.25, True),  # 13 == 16 x 81.25 %
        (2, "85", True),
        (3, 99, False),
        (3, 100, True),  # peak season only fits with no ceiling at all
    ],
)
def test_seed_cpu_ceiling(replicas, percent, passes):
    if passes:
        capacity_plan(seed(replicas), max_cpu_percent=percent, **HOST)
    else:
        with pytest.raises(CapacityError, match="raise max_cpu_percent"):
            capacity_plan(seed(replicas), max_cpu_percent=percent, **HOST)


def test_ceiling_message_names_services_and_figures():
    with pytest.raises(CapacityError) as info:
        capacity_plan(seed(3), max_cpu_percent=80, **HOST)
    assert str(info.value) == (
        "the plan needs 16.0 CPUs (app: 9.0 for 3 replicas, postgres: 2.0, nginx: 1.0, redis-cache: 1.0, "
        "redis-queue: 1.0, scraper: 1.0, pgbouncer: 0.5, grafana: 0.5) but the ceiling is 12.8 "
        "(80% of 16 host CPUs); lower app replicas or raise max_cpu_percent"
    )


def test_over_commit_message():
    with pytest.raises(CapacityError) as info:
        capacity_plan(seed(4), **HOST)
    assert str(info.value).startswith("the plan needs 19.0 CPUs (app: 12.0 for 4 replicas,")
    assert "but the host has only 16, which over-commits it; lower app replicas" in str(info.value)


def test_memory_over_commit_names_the_biggest_service():
    plan = seed(2)
    plan["postgres"]["mem_limit"] = "90g"
    with pytest.raises(CapacityError) as info:
        capacity_plan(plan, **HOST)
    text = str(info.value)
    assert text.startswith("the plan needs 134GiB of memory limits (postgres: 90GiB, app: 20GiB for 2 replicas,")
    assert "but the host has only 128GiB, which over-commits it; lower postgres mem_limit" in text


def test_memory_ceiling():
    # 76GB is 59.4 % of 128GB
    capacity_plan(seed(2), max_memory_percent=59.375, **HOST)
    with pytest.raises(CapacityError) as info:
        capacity_plan(seed(2), max_memory_percent=59, **HOST)
    assert "but the ceiling is 75.5GiB (59% of 128GiB); lower postgres mem_limit or raise max_memory_percent" in str(info.value)


def test_cpu_and_memory_problems_together():
    plan = seed(2)
    plan["scraper"] = {"cpus": 8, "mem_limit": "60g"}
    with pytest.raises(CapacityError) as info:
        capacity_plan(plan, **HOST)
    assert "CPUs (scraper: 8.0," in str(info.value)
    assert "of memory limits (scraper: 60GiB," in str(info.value)


@pytest.mark.parametrize(
    "spec",
    [
        {"cpus": "0.5", "mem_limit": "2GB"},
        {"cpus": 0.5, "mem_limit": "2g"},
        {"cpus": ".5", "mem_limit": "2048m"},
        {"cpus": Decimal("0.5"), "mem_limit": 2 * GIB, "replicas": 1},
        {"cpus": "0.50", "mem_limit": "2GiB", "mem_reservation": None},
        {"cpus": "0.5", "mem_limit": "2097152k", "replicas": "1"},
    ],
)
def test_docker_units(spec):
    if isinstance(spec["cpus"], Decimal):
        spec = dict(spec, cpus=str(spec["cpus"]))
    result = capacity_plan({"grafana": spec}, **HOST)
    assert result["totals"]["cpus"] == 0.5
    assert result["totals"]["mem_limit"] == 2 * GIB


def test_replicas_zero_is_allowed_and_counts_nothing():
    plan = seed(0)
    result = capacity_plan(plan, **HOST)
    assert result["services"]["app"]["total_cpus"] == 0.0
    assert result["totals"]["cpus"] == 7.0


def test_host_memory_from_facts():
    # ansible_memtotal_mb * 1048576
    result = capacity_plan(seed(2), host_cpus=24, host_memory=128535 * 1048576)
    assert result["host"]["memory"] == 128535 * MIB
    assert result["utilisation"]["cpus_percent"] == 54.2  # 13/24


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"app": {"cpus": "3.0", "mem_limit": "10g", "mem_reservation": "12g"}},
            "service 'app' mem_reservation 12GiB is above its mem_limit 10GiB",
        ),
        (
            {"app": {"cpus": "3.0", "mem_limit": "10g", "memory": "12g"}},
            "service 'app' has unknown key(s) memory; use only cpus, mem_limit, mem_reservation, replicas",
        ),
        ({"app": {"cpus": "3.0", "mem_limit": "10g", "cpu": 3, "limits": 1}}, "unknown key(s) cpu, limits"),
        ({"app": {"mem_limit": "10g"}}, "service 'app' has no cpus; a service without limits cannot be planned"),
        ({"app": {"cpus": 1}}, "service 'app' has no mem_limit"),
        ({"app": {"cpus": None, "mem_limit": None}}, "has no cpus or mem_limit"),
        ({"app": {"cpus": 0, "mem_limit": "1g"}}, "service 'app' cpus is 0, which Docker reads as no limit"),
        ({"app": {"cpus": 1, "mem_limit": 0}}, "service 'app' mem_limit is 0, which Docker reads as no limit"),
        ({"app": {"cpus": 1, "mem_limit": "10x"}}, "service 'app' mem_limit '10x' has an unknown unit 'x'"),
        ({"app": {"cpus": "500m", "mem_limit": "1g"}}, "service 'app' cpus '500m' is not a number of CPUs"),
        ({"app": {"cpus": 1, "mem_limit": "-1g"}}, "service 'app' mem_limit '-1g' is negative"),
        ({"app": {"cpus": 1, "mem_limit": "1g", "replicas": -1}}, "service 'app' replicas -1 is too small"),
        ({"app": {"cpus": 1, "mem_limit": "1g", "replicas": "two"}}, "service 'app' replicas 'two' is not a whole number"),
        ({"app": {"cpus": 17, "mem_limit": "1g"}}, "service 'app' asks for 17 CPUs but the host has 16"),
        ({"app": "3 cpus"}, "service 'app' must be a dict with cpus and mem_limit, not str"),
    ],
)
def test_bad_services(change, message):
    plan = seed(2)
    plan.update(change)
    with pytest.raises(CapacityError) as info:
        capacity_plan(plan, **HOST)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("services", "options", "message"),
    [
        ({}, {}, "the plan must be a non-empty dict of services"),
        ([{"cpus": 1}], {}, "the plan must be a non-empty dict of services"),
        (SEED, {"host_cpus": 0}, "host_cpus must be above 0"),
        (SEED, {"host_cpus": "sixteen"}, "host_cpus 'sixteen' is not a number of CPUs"),
        (SEED, {"host_memory": 0}, "host_memory must be above 0; pass ansible_memtotal_mb * 1048576"),
        (SEED, {"host_memory": "128q"}, "host_memory '128q' has an unknown unit"),
        (SEED, {"max_cpu_percent": 0}, "max_cpu_percent 0 must be above 0 and at most 100"),
        (SEED, {"max_cpu_percent": 120}, "at most 100; a plan above 100% over-commits the host"),
        (SEED, {"max_memory_percent": "lots"}, "max_memory_percent 'lots' is not a percentage"),
        (SEED, {"max_memory_percent": -5}, "is not a percentage"),
    ],
)
def test_bad_arguments(services, options, message):
    arguments = dict(HOST, **options)
    with pytest.raises(CapacityError) as info:
        capacity_plan(services, **arguments)
    assert message in str(info.value)


# ---------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------

_service = st.fixed_dictionaries(
    {
        "cpus": st.decimals(min_value=Decimal("0.01"), max_value=4, places=2).map(str),
        "mem_limit": st.integers(min_value=1, max_value=16 * 1024).map(lambda mb: f"{mb}m"),
        "replicas": st.integers(min_value=0, max_value=4),
    }
)
_plans = st.dictionaries(st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True), _service, min_size=1, max_size=8)


def _sum_cpus(plan):
    return sum(Decimal(spec["cpus"]) * spec["replicas"] for spec in plan.values())


def _sum_mem(plan):
    return sum(int(spec["mem_limit"][:-1]) * MIB * spec["replicas"] for spec in plan.values())


@given(plan=_plans, cpu_percent=st.integers(min_value=1, max_value=100), mem_percent=st.integers(1, 100))
def test_passes_exactly_when_within_the_ceiling(plan, cpu_percent, mem_percent):
    cpus, memory = _sum_cpus(plan), _sum_mem(plan)
    fits = cpus * 100 <= 32 * cpu_percent and memory * 100 <= 64 * GIB * mem_percent
    arguments = {"host_cpus": 32, "host_memory": "64g", "max_cpu_percent": cpu_percent, "max_memory_percent": mem_percent}
    if fits:
        result = capacity_plan(plan, **arguments)
        assert result["totals"]["mem_limit"] == memory
        assert Decimal(str(result["totals"]["cpus"])) == cpus
        assert result["buffer"]["memory"] + memory == 64 * GIB
        assert result["buffer"]["cpus"] + result["totals"]["cpus"] == pytest.approx(32)
        assert result["headroom"]["memory"] <= result["buffer"]["memory"]
        assert 0 <= result["utilisation"]["cpus_percent"] <= cpu_percent + 0.05
        assert 0 <= result["utilisation"]["mem_limit_percent"] <= mem_percent + 0.05
        assert result["totals"]["mem_reservation"] <= result["totals"]["mem_limit"]
    else:
        with pytest.raises(CapacityError) as info:
            capacity_plan(plan, **arguments)
        # the message names the biggest contributor (the first one on a tie)
        text = str(info.value)
        if cpus * 100 > 32 * cpu_percent:
            top = max(plan, key=lambda name: Decimal(plan[name]["cpus"]) * plan[name]["replicas"])
            assert f"lower {top} " in text
            assert "raise max_cpu_percent" in text or "over-commits" in text
        if memory * 100 > 64 * GIB * mem_percent:
            top = max(plan, key=lambda name: int(plan[name]["mem_limit"][:-1]) * plan[name]["replicas"])
            assert f"lower {top} " in text


@given(plan=_plans, name=st.data())
def test_another_replica_never_lowers_totals(plan, name):
    chosen = name.draw(st.sampled_from(sorted(plan)))
    more = copy.deepcopy(plan)
    more[chosen]["replicas"] += 1
    host = {"host_cpus": 10**6, "host_memory": "1024t"}
    small, large = capacity_plan(plan, **host), capacity_plan(more, **host)
    assert large["totals"]["cpus"] >= small["totals"]["cpus"]
    assert large["totals"]["mem_limit"] >= small["totals"]["mem_limit"]
    assert large["utilisation"]["cpus_percent"] >= small["utilisation"]["cpus_percent"]
    assert large["buffer"]["memory"] <= small["buffer"]["memory"]
