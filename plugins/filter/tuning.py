# Copyright (c) 2025, Connect platform operations
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0
"""PostgreSQL tuning filters: connect.platform.pg_tune and connect.platform.pg_settings.

Documentation lives in the sidecar files pg_tune.yml and pg_settings.yml.
The logic is in module_utils/_pgtune.py; these wrappers only turn its
errors into AnsibleFilterError.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.connect.platform.plugins.module_utils._pgtune import (
    DEFAULT_PG_VERSION,
    pg_settings,
    pgtune,
)


def pg_tune_filter(
    memory,
    *,
    db_type="web",
    cpus=None,
    max_connections=None,
    storage="ssd",
    pg_version=DEFAULT_PG_VERSION,
    os_type="linux",
    db_size="mid_ram",
):
    """PGTune's postgresql.conf settings for ``memory`` (see pg_tune.yml)."""
    try:
        return pgtune(
            memory,
            db_type=db_type,
            cpus=cpus,
            max_connections=max_connections,
            storage=storage,
            pg_version=pg_version,
            os_type=os_type,
            db_size=db_size,
        )
    except ValueError as exc:
        raise AnsibleFilterError(f"pg_tune: {exc}", orig_exc=exc) from exc


def pg_settings_filter(
    memory_limit,
    *,
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
    """Container-aware, checked postgresql.conf settings (see pg_settings.yml)."""
    try:
        return pg_settings(
            memory_limit,
            overrides=overrides,
            pgbouncer_pool_size=pgbouncer_pool_size,
            pgbouncer_reserve_pool_size=pgbouncer_reserve_pool_size,
            db_type=db_type,
            cpus=cpus,
            max_connections=max_connections,
            storage=storage,
            pg_version=pg_version,
            os_type=os_type,
            db_size=db_size,
        )
    except ValueError as exc:
        raise AnsibleFilterError(f"pg_settings: {exc}", orig_exc=exc) from exc


class FilterModule:
    """PostgreSQL tuning filters."""

    def filters(self):
        return {
            "pg_tune": pg_tune_filter,
            "pg_settings": pg_settings_filter,
        }
