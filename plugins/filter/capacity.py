# Copyright (c) 2025, Connect platform operations
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0
"""Capacity filter: connect.platform.capacity_plan.

Documentation lives in the sidecar file capacity_plan.yml.  The logic is in
module_utils/_capacity.py; this wrapper only turns its errors into
AnsibleFilterError.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.connect.platform.plugins.module_utils._capacity import (
    capacity_plan,
)


def capacity_plan_filter(
    services,
    *,
    host_cpus,
    host_memory,
    max_cpu_percent=100,
    max_memory_percent=100,
):
    """Totals, utilisation and buffer of the stack's limits (see capacity_plan.yml)."""
    try:
        return capacity_plan(
            services,
            host_cpus=host_cpus,
            host_memory=host_memory,
            max_cpu_percent=max_cpu_percent,
            max_memory_percent=max_memory_percent,
        )
    except ValueError as exc:
        raise AnsibleFilterError(f"capacity_plan: {exc}", orig_exc=exc) from exc


class FilterModule:
    """Capacity planning filters."""

    def filters(self):
        return {"capacity_plan": capacity_plan_filter}
