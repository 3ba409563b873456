# Copyright: (c) 2026, Connect platform operations
# Apache License 2.0 (see galaxy.yml)
"""Swarm filters: connect.platform.swarm_plan and connect.platform.swarm_stack.

Documentation lives in the sidecar files swarm_plan.yml and swarm_stack.yml;
the logic in module_utils/_swarm.py and module_utils/_swarm_stack.py.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.connect.platform.plugins.module_utils._swarm import SwarmPlanError
from ansible_collections.connect.platform.plugins.module_utils._swarm import swarm_plan as _swarm_plan
from ansible_collections.connect.platform.plugins.module_utils._swarm_stack import SwarmStackError, stack_from_project


def swarm_plan(servers, managers, workers=None, data_placement=None, data_services=(), edge=None, public=None):
    """Check a cluster layout; each server's Swarm role and labels (see swarm_plan.yml)."""
    try:
        return _swarm_plan(servers, managers, workers, data_placement, list(data_services or ()), edge, public)
    except SwarmPlanError as exc:
        raise AnsibleFilterError(str(exc), orig_exc=exc) from exc


def swarm_stack(
    project,
    stack,
    app_service,
    app_instances,
    app_update=None,
    edge_service=None,
    data_services=(),
    networks=None,
    encrypted=False,
    secret_digests=None,
):
    """The merged Compose project as a Swarm stack file (see swarm_stack.yml)."""
    try:
        return stack_from_project(
            project,
            stack,
            app_service,
            list(app_instances or ()),
            app_update=app_update,
            edge_service=edge_service,
            data_services=list(data_services or ()),
            networks=networks,
            encrypted=encrypted,
            secret_digests=secret_digests,
        )
    except SwarmStackError as exc:
        raise AnsibleFilterError(str(exc), orig_exc=exc) from exc


class FilterModule:
    """Swarm filters."""

    def filters(self):
        return {"swarm_plan": swarm_plan, "swarm_stack": swarm_stack}
