# Copyright (c) 2025, Connect platform operations
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0
"""Capacity plan for the Compose stack on one host.

Private to the collection (underscore-prefixed); importable without Ansible.
Errors are :class:`CapacityError`, a plain ``ValueError`` subclass.

The plan is a dict of services keyed by name, each with Docker Compose's
limits: ``cpus`` (Docker ``cpus``: ``3``, ``"3.0"``, ``"0.5"``), ``mem_limit``
(``"10g"``, ``"512m"``, ``"2GB"`` or bytes; binary units, see ``_units``),
optional ``mem_reservation`` and optional ``replicas`` (default 1; the app
service is one entry with ``replicas: 2``, or 3 in peak season).

CPU totals compare with the host's logical CPUs, which is what Docker's
``cpus`` counts (pass ``ansible_processor_vcpus``; pass the number of physical
cores instead to plan on cores as the architecture document does).  Memory
totals sum ``mem_limit`` (the most the containers may take) and compare with
the host's memory (pass ``ansible_memtotal_mb * 1048576``).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from ansible_collections.connect.platform.plugins.module_utils._units import (
    UnitError,
    format_decimal,
    human_size,
    parse_cpus,
    parse_int,
    parse_size,
    round_half_up,
)

SERVICE_KEYS = ("cpus", "mem_limit", "mem_reservation", "replicas")
_REQUIRED_KEYS = ("cpus", "mem_limit")


class CapacityError(ValueError):
    """A plan that cannot be read, or that does not fit the host."""


def _percent_option(value, name):
    try:
        amount = parse_cpus(value, name)  # a plain decimal number
    except UnitError as exc:
        raise CapacityError(f"{name} {value!r} is not a percentage; give a number such as 80") from exc
    if amount <= 0 or amount > 100:
        raise CapacityError(f"{name} {value!r} must be above 0 and at most 100; a plan above 100% over-commits the host")
    return amount


def _service(name, spec):
    if not isinstance(spec, Mapping):
        raise CapacityError(f"service {name!r} must be a dict with cpus and mem_limit, not {type(spec).__name__}")
    unknown = sorted(str(key) for key in spec if key not in SERVICE_KEYS)
    if unknown:
        raise CapacityError(f"service {name!r} has unknown key(s) {', '.join(unknown)}; use only {', '.join(SERVICE_KEYS)}")
    missing = [key for key in _REQUIRED_KEYS if spec.get(key) is None]
    if missing:
        raise CapacityError(f"service {name!r} has no {' or '.join(missing)}; a service without limits cannot be planned")
    try:
        cpus = parse_cpus(spec["cpus"], f"service {name!r} cpus")
        mem_limit = parse_size(spec["mem_limit"], f"service {name!r} mem_limit")
        reservation = 0
        if spec.get("mem_reservation") is not None:
            reservation = parse_size(spec["mem_reservation"], f"service {name!r} mem_reservation")
        replicas = 1
        if spec.get("replicas") is not None:
            replicas = parse_int(spec["replicas"], f"service {name!r} replicas", 0)
    except UnitError as exc:
        raise CapacityError(str(exc)) from exc
    if cpus <= 0:
        raise CapacityError(f"service {name!r} cpus is 0, which Docker reads as no limit; give its CPU limit, e.g. '1.0'")
    if mem_limit <= 0:
        raise CapacityError(f"service {name!r} mem_limit is 0, which Docker reads as no limit; give its memory limit, e.g. '2g'")
    if reservation > mem_limit:
        raise CapacityError(
            f"service {name!r} mem_reservation {human_size(reservation)} is above its mem_limit "
            f"{human_size(mem_limit)}; Docker refuses that, lower mem_reservation or raise mem_limit"
        )
    return cpus, mem_limit, reservation, replicas


def _contributors(rows, key, render):
    ordered = sorted(rows.items(), key=lambda item: item[1][key], reverse=True)
    parts = []
    for name, row in ordered:
        if not row[key]:
            continue
        suffix = f" for {row['replicas']} replicas" if row["replicas"] > 1 else ""
        parts.append(f"{name}: {render(row[key])}{suffix}")
    return ", ".join(parts), ordered[0][0], ordered[0][1]["replicas"]


def capacity_plan(services, host_cpus, host_memory, max_cpu_percent=100, max_memory_percent=100):
    """Check the stack's limits against the host and return totals and buffers.

    Returns a dict::

        services:    {name: {replicas, cpus, mem_limit, mem_reservation,
                             total_cpus, total_mem_limit, total_mem_reservation}}
        totals:      {cpus, mem_limit, mem_reservation, mem_limit_human, mem_reservation_human}
        host:        {cpus, memory, memory_human}
        ceiling:     {cpu_percent, memory_percent, cpus, memory, memory_human}
        utilisation: {cpus_percent, mem_limit_percent, mem_reservation_percent}
        buffer:      {cpus, memory, memory_human}    # host minus totals
        headroom:    {cpus, memory, memory_human}    # ceiling minus totals

    CPU amounts are floats, memory amounts bytes (int), percentages rounded
    half up to one decimal.  Raises :class:`CapacityError` naming the
    services when the totals exceed the host or the ceiling.
    """
    if not isinstance(services, Mapping) or not services:
        raise CapacityError("the plan must be a non-empty dict of services, each {cpus, mem_limit, mem_reservation, replicas}")
    try:
        host_cpu_amount = parse_cpus(host_cpus, "host_cpus")
        host_mem = parse_size(host_memory, "host_memory")
    except UnitError as exc:
        raise CapacityError(f"{exc} (pass ansible_processor_vcpus and ansible_memtotal_mb * 1048576)") from exc
    if host_cpu_amount <= 0:
        raise CapacityError("host_cpus must be above 0; pass ansible_processor_vcpus")
    if host_mem <= 0:
        raise CapacityError("host_memory must be above 0; pass ansible_memtotal_mb * 1048576")
    cpu_percent = _percent_option(max_cpu_percent, "max_cpu_percent")
    mem_percent = _percent_option(max_memory_percent, "max_memory_percent")

    rows = {}
    for raw_name, spec in services.items():
        name = str(raw_name)
        cpus, mem_limit, reservation, replicas = _service(name, spec)
        if cpus > host_cpu_amount:
            raise CapacityError(
                f"service {name!r} asks for {format_decimal(cpus)} CPUs but the host has "
                f"{format_decimal(host_cpu_amount)}; Docker refuses a cpus limit above the host's CPUs"
            )
        rows[name] = {
            "replicas": replicas,
            "cpus": cpus,
            "mem_limit": mem_limit,
            "mem_reservation": reservation,
            "total_cpus": cpus * replicas,
            "total_mem_limit": mem_limit * replicas,
            "total_mem_reservation": reservation * replicas,
        }

    total_cpus = sum((row["total_cpus"] for row in rows.values()), Decimal(0))
    total_mem = sum(row["total_mem_limit"] for row in rows.values())
    total_res = sum(row["total_mem_reservation"] for row in rows.values())
    cpu_ceiling = host_cpu_amount * cpu_percent / 100
    mem_ceiling = host_mem * mem_percent / 100  # a Decimal; compared exactly

    problems = []
    if total_cpus > cpu_ceiling:
        listing, top, top_replicas = _contributors(rows, "total_cpus", lambda v: f"{float(v):.1f}")
        over_host = total_cpus > host_cpu_amount
        fix = f"lower {top} replicas" if top_replicas > 1 else f"lower {top} cpus"
        if over_host:
            problems.append(
                f"the plan needs {float(total_cpus):.1f} CPUs ({listing}) but the host has only "
                f"{format_decimal(host_cpu_amount)}, which over-commits it; {fix} or move a service to another host"
            )
        else:
            problems.append(
                f"the plan needs {float(total_cpus):.1f} CPUs ({listing}) but the ceiling is "
                f"{float(cpu_ceiling):.1f} ({format_decimal(cpu_percent)}% of "
                f"{format_decimal(host_cpu_amount)} host CPUs); {fix} or raise max_cpu_percent"
            )
    if total_mem > mem_ceiling:
        listing, top, top_replicas = _contributors(rows, "total_mem_limit", human_size)
        over_host = total_mem > host_mem
        fix = f"lower {top} replicas" if top_replicas > 1 else f"lower {top} mem_limit"
        if over_host:
            problems.append(
                f"the plan needs {human_size(total_mem)} of memory limits ({listing}) but the host has "
                f"only {human_size(host_mem)}, which over-commits it; {fix} or move a service to another host"
            )
        else:
            problems.append(
                f"the plan needs {human_size(total_mem)} of memory limits ({listing}) but the ceiling is "
                f"{human_size(int(mem_ceiling))} ({format_decimal(mem_percent)}% of {human_size(host_mem)}); "
                f"{fix} or raise max_memory_percent"
            )
    if problems:
        raise CapacityError("; ".join(problems))

    def cpu_float(value):
        return float(value)

    return {
        "services": {
            name: {
                "replicas": row["replicas"],
                "cpus": cpu_float(row["cpus"]),
                "mem_limit": row["mem_limit"],
                "mem_reservation": row["mem_reservation"],
                "total_cpus": cpu_float(row["total_cpus"]),
                "total_mem_limit": row["total_mem_limit"],
                "total_mem_reservation": row["total_mem_reservation"],
            }
            for name, row in rows.items()
        },
        "totals": {
            "cpus": cpu_float(total_cpus),
            "mem_limit": total_mem,
            "mem_reservation": total_res,
            "mem_limit_human": human_size(total_mem),
            "mem_reservation_human": human_size(total_res),
        },
        "host": {
            "cpus": cpu_float(host_cpu_amount),
            "memory": host_mem,
            "memory_human": human_size(host_mem),
        },
        "ceiling": {
            "cpu_percent": cpu_float(cpu_percent),
            "memory_percent": cpu_float(mem_percent),
            "cpus": cpu_float(cpu_ceiling),
            "memory": int(mem_ceiling),
            "memory_human": human_size(int(mem_ceiling)),
        },
        "utilisation": {
            "cpus_percent": round_half_up(total_cpus * 100 / host_cpu_amount),
            "mem_limit_percent": round_half_up(Decimal(total_mem) * 100 / host_mem),
            "mem_reservation_percent": round_half_up(Decimal(total_res) * 100 / host_mem),
        },
        "buffer": {
            "cpus": cpu_float(host_cpu_amount - total_cpus),
            "memory": host_mem - total_mem,
            "memory_human": human_size(host_mem - total_mem),
        },
        "headroom": {
            "cpus": cpu_float(cpu_ceiling - total_cpus),
            "memory": int(mem_ceiling) - total_mem,
            "memory_human": human_size(int(mem_ceiling) - total_mem),
        },
    }
