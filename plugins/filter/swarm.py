# Copyright: (c) 2026, Connect platform operations
# Apache License 2.0 (see galaxy.yml)
"""Swarm filter: connect.platform.swarm_plan.

Documentation lives in the sidecar file swarm_plan.yml; the logic in
module_utils/_swarm.py.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.connect.platform.plugins.module_utils._swarm import SwarmPlanError
from ansible_collections.connect.platform.plugins.module_utils._swarm import swarm_plan as _swarm_plan


def swarm_plan(servers, managers, workers=None, data_placement=None, data_services=(), edge=None, public=None):
    """Check a cluster layout; each server's Swarm role and labels (see swarm_plan.yml)."""
    try:
        return _swarm_plan(servers, managers, workers, data_placement, list(data_services or ()), edge, public)
    except SwarmPlanError as exc:
        raise AnsibleFilterError(str(exc), orig_exc=exc) from exc


class FilterModule:
    """Swarm filters."""

    def filters(self):
        return {"swarm_plan": swarm_plan}
