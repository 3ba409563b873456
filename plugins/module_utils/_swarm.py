# Copyright: (c) 2026, Connect platform operations
# Apache License 2.0 (see galaxy.yml)
"""A cluster layout checked before a Swarm is formed, and the node roles and
labels it gives each server.

The layout is what an inventory says: which servers are managers, which are
workers, which one server holds each stateful service's data, which servers
run nginx and which take public traffic. A layout that would form a Swarm
that cannot survive the loss of one server, or place a data service on no
server or on two, is refused with a sentence naming the setting.
"""

from __future__ import annotations

__all__ = ["EDGE_LABEL", "PUBLIC_LABEL", "SwarmPlanError", "data_label", "swarm_plan"]

#: The label nginx's service is placed by.
EDGE_LABEL = "connect.edge"
#: The label of a server that takes public traffic (DNS points at it).
PUBLIC_LABEL = "connect.public"


def data_label(service):
    """The label a data service is pinned by: ``connect.data.<service>``."""
    return f"connect.data.{service}"


class SwarmPlanError(ValueError):
    """A cluster layout that must not be formed."""


def _names(value, setting):
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise SwarmPlanError(f"{setting} must be a list of inventory host names, not {value!r}")
    for item in value:
        if not isinstance(item, str) or not item:
            raise SwarmPlanError(f"{setting} holds {item!r}: each entry is an inventory host name")
    return list(value)


def _twice(names):
    seen, twice = set(), []
    for name in names:
        if name in seen and name not in twice:
            twice.append(name)
        seen.add(name)
    return twice


def swarm_plan(servers, managers, workers=None, data_placement=None, data_services=(), edge=None, public=None):
    """Check a layout and return each server's Swarm role and labels.

    ``servers`` are the cluster group's hosts; ``managers``/``workers`` the
    inventory's lists; ``data_placement`` maps a data service to the one
    server holding its data; ``data_services`` the services that need one;
    ``edge`` the servers running nginx, ``public`` those taking public
    traffic (each must run nginx).
    """
    servers = _names(servers, "the cluster group")
    managers = _names(managers, "swarm_managers")
    workers = _names(workers, "swarm_workers")
    edge = _names(edge, "swarm_edge_servers")
    public = _names(public, "swarm_public_servers")
    data_placement = data_placement or {}
    if not isinstance(data_placement, dict):
        raise SwarmPlanError(f"swarm_data_placement must map each data service to a server, not {data_placement!r}")

    for setting, names in (("swarm_managers", managers), ("swarm_workers", workers)):
        twice = _twice(names)
        if twice:
            raise SwarmPlanError(f"{setting} lists {', '.join(twice)} more than once: list each server once")
    both = [name for name in managers if name in workers]
    if both:
        raise SwarmPlanError(f"{', '.join(both)} is in both swarm_managers and swarm_workers: a server is one or the other")
    if len(managers) < 3 or len(managers) % 2 == 0:
        raise SwarmPlanError(
            f"swarm_managers lists {len(managers)} server(s): a Swarm keeps its quorum after losing one manager"
            " only with an odd number of at least 3; list 3 or 5 managers"
        )
    members = managers + workers
    unknown = [name for name in members if name not in servers]
    if unknown:
        raise SwarmPlanError(
            f"{', '.join(unknown)} in swarm_managers/swarm_workers is not a host of the cluster group"
            f" ({', '.join(servers) or 'none'}): add it to the inventory or remove it"
        )
    missing = [name for name in servers if name not in members]
    if missing:
        raise SwarmPlanError(
            f"{', '.join(missing)} is in the cluster group but in neither swarm_managers nor swarm_workers: list it in one"
        )

    labels = {name: {} for name in members}
    for service in data_services:
        placed = data_placement.get(service)
        hosts = [placed] if isinstance(placed, str) else _names(placed, f"swarm_data_placement['{service}']")
        if len(hosts) != 1:
            where = "no server" if not hosts else f"{len(hosts)} servers ({', '.join(hosts)})"
            raise SwarmPlanError(f"swarm_data_placement['{service}'] names {where}: its data lives on exactly one server; name that one")
        if hosts[0] not in members:
            raise SwarmPlanError(f"swarm_data_placement['{service}'] names {hosts[0]}, which is not a server of the cluster")
        labels[hosts[0]][data_label(service)] = "true"
    unplanned = sorted(set(data_placement) - set(data_services))
    if unplanned:
        raise SwarmPlanError(
            f"swarm_data_placement names {', '.join(unplanned)}, which is not a data service ({', '.join(data_services)}): remove it"
        )

    if not edge:
        raise SwarmPlanError("swarm_edge_servers is empty: name at least one server to run nginx")
    if not public:
        raise SwarmPlanError("swarm_public_servers is empty: name the servers that take public traffic")
    for setting, names in (("swarm_edge_servers", edge), ("swarm_public_servers", public)):
        twice = _twice(names)
        if twice:
            raise SwarmPlanError(f"{setting} lists {', '.join(twice)} more than once: list each server once")
        unknown = [name for name in names if name not in members]
        if unknown:
            raise SwarmPlanError(f"{setting} names {', '.join(unknown)}, which is not a server of the cluster")
    no_nginx = [name for name in public if name not in edge]
    if no_nginx:
        raise SwarmPlanError(
            f"swarm_public_servers names {', '.join(no_nginx)}, which runs no nginx (not in swarm_edge_servers):"
            " public traffic there would find nothing on 80/443; add it to swarm_edge_servers"
        )
    for name in edge:
        labels[name][EDGE_LABEL] = "true"
    for name in public:
        labels[name][PUBLIC_LABEL] = "true"

    return {
        "managers": managers,
        "workers": workers,
        "nodes": {name: {"role": "manager" if name in managers else "worker", "labels": labels[name]} for name in members},
        # Every label the plan owns: a server without one of these has it removed.
        "labels": sorted({data_label(service) for service in data_services} | {EDGE_LABEL, PUBLIC_LABEL}),
    }
