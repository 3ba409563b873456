# Copyright: (c) 2026, Connect platform operations
# Apache License 2.0 (see galaxy.yml)
"""The stack's Compose project as a Swarm stack file (``docker stack deploy``).

The service roles write one Compose fragment each and compose_stack merges
them into one project; on a cluster that same project, not a second copy,
becomes the stack. What Compose and Swarm spell differently is translated:

- the app instances (``app1``..``appN``, identical but for their name) become
  one replicated service of N tasks, spread over the servers, with a rolling
  update (one at a time, start-first, rolled back on failure) whose monitor
  window outlasts the health check's start period and retries;
- the edge service (nginx) runs once on each edge server (label
  ``connect.edge``), its ports published in host mode;
- each data service is pinned to the one server that holds its data (label
  ``connect.data.<service>``);
- ``cpus``, ``mem_limit``, ``mem_reservation`` and ``pids_limit`` (the
  resource plan) become ``deploy.resources``; ``restart`` a restart policy;
  ``tmpfs`` and ``shm_size`` tmpfs mounts;
- the external bridge networks become the stack's overlay networks (internal
  where the bridge was; encrypted when asked);
- each file secret gets a name that carries its content's digest (a Swarm
  secret cannot change: a new value is a new secret);
- every service resolves by DNS round robin (``endpoint_mode: dnsrr``): nginx
  already balances, and a service VIP needs IPVS.

Compose-only keys Swarm ignores (``container_name``, ``depends_on``,
``pull_policy``) are dropped; a key this module does not know is refused, so
that a fragment's new setting is translated on purpose, not lost.
"""

from __future__ import annotations

import re

from ansible_collections.connect.platform.plugins.module_utils._swarm import EDGE_LABEL, SERVER_LABEL, data_label
from ansible_collections.connect.platform.plugins.module_utils._units import parse_cpus, parse_size

__all__ = ["SwarmStackError", "duration_seconds", "stack_from_project", "update_monitor"]

#: Keys a service keeps as they are (Compose and the stack file agree).
_KEPT = frozenset(
    {
        "image",
        "command",
        "entrypoint",
        "environment",
        "env_file",
        "user",
        "working_dir",
        "healthcheck",
        "read_only",
        "cap_add",
        "cap_drop",
        "secrets",
        "networks",
        "extra_hosts",
        "stop_signal",
        "stop_grace_period",
        "ulimits",
        "init",
        "labels",
        "logging",
        "hostname",
        "sysctls",
    }
)
#: Compose-only keys with no meaning in a Swarm service.
_DROPPED = frozenset({"container_name", "depends_on", "pull_policy"})
#: Keys translated below.
_TRANSLATED = frozenset({"cpus", "mem_limit", "mem_reservation", "pids_limit", "restart", "tmpfs", "shm_size", "volumes", "ports"})

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|us|ns|h|m|s)")
_DURATION_FACTORS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}

#: Placeholder Swarm replaces with a task's slot number (1..replicas).
TASK_SLOT = "{{.Task.Slot}}"


class SwarmStackError(ValueError):
    """A Compose project this module cannot turn into a stack faithfully."""


def duration_seconds(value, what="duration"):
    """Seconds in a Compose duration (``1m30s``, ``10s``, ``500ms``) or a number of seconds."""
    if isinstance(value, bool):
        raise SwarmStackError(f"{what} must be a duration such as 10s or 1m30s, not {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    if not text or _DURATION.sub("", text):
        raise SwarmStackError(f"{what} must be a duration such as 10s or 1m30s, not {value!r}")
    return sum(float(number) * _DURATION_FACTORS[unit] for number, unit in _DURATION.findall(text))


def _format_seconds(seconds):
    return f"{int(seconds + 0.999)}s"


def update_monitor(healthcheck, margin=5):
    """How long Swarm watches an updated task before it calls the update a success.

    A task is only known to be healthy, or to have failed for good, once its
    start period is over and the retries that follow have passed: a monitor
    window shorter than ``start_period + (interval + timeout) * retries``
    reports success for a task that restart-loops afterwards.
    """
    if not healthcheck or healthcheck.get("disable") or healthcheck.get("test") in (None, ["NONE"]):
        raise SwarmStackError("a rolled service needs a health check: its update is gated on it")
    start = duration_seconds(healthcheck.get("start_period", 0), "healthcheck.start_period")
    interval = duration_seconds(healthcheck.get("interval", "30s"), "healthcheck.interval")
    timeout = duration_seconds(healthcheck.get("timeout", "30s"), "healthcheck.timeout")
    retries = int(healthcheck.get("retries", 3))
    return _format_seconds(start + (interval + timeout) * retries + margin)


def _port(spec, service):
    """A short port (``[ip:]published:target[/proto]``) in the long form, published in host mode."""
    if isinstance(spec, dict):
        return {**spec, "mode": "host"}
    text, _sep, protocol = str(spec).partition("/")
    parts = text.split(":")
    if len(parts) == 1 or not all(part.isdigit() for part in parts[-2:]):
        raise SwarmStackError(f"service {service}: port {spec!r} must name its published and target port (published:target)")
    # A host address cannot be given to a Swarm port (host mode binds every address):
    # the servers' firewall, not the bind address, keeps it from the outside.
    return {"target": int(parts[-1]), "published": int(parts[-2]), "protocol": protocol or "tcp", "mode": "host"}


def _tmpfs(spec, service):
    """A ``tmpfs`` entry (``/path[:size=64m]``) as a tmpfs mount."""
    target, _sep, options = str(spec).partition(":")
    mount = {"type": "tmpfs", "target": target}
    for option in filter(None, options.split(",")):
        key, _sep, value = option.partition("=")
        if key != "size":
            raise SwarmStackError(f"service {service}: tmpfs option {option!r} on {target} has no Swarm equivalent (only size=)")
        mount["tmpfs"] = {"size": parse_size(value, f"service {service} tmpfs {target} size")}
    return mount


def _deploy(definition, service):
    limits, reservations = {}, {}
    if "cpus" in definition:
        limits["cpus"] = str(parse_cpus(definition["cpus"], f"service {service} cpus"))
    if "mem_limit" in definition:
        limits["memory"] = str(definition["mem_limit"])
    if "pids_limit" in definition:
        limits["pids"] = int(definition["pids_limit"])
    if "mem_reservation" in definition:
        reservations["memory"] = str(definition["mem_reservation"])
    deploy = {"endpoint_mode": "dnsrr"}
    resources = {key: value for key, value in (("limits", limits), ("reservations", reservations)) if value}
    if resources:
        deploy["resources"] = resources
    restart = definition.get("restart", "no")
    if restart not in ("no", "always", "unless-stopped", "on-failure"):
        raise SwarmStackError(f"service {service}: restart {restart!r} is not one of no, always, unless-stopped, on-failure")
    deploy["restart_policy"] = {"condition": {"no": "none", "on-failure": "on-failure"}.get(restart, "any"), "delay": "5s"}
    return deploy


def _service(definition, service):
    unknown = sorted(set(definition) - _KEPT - _DROPPED - _TRANSLATED)
    if unknown:
        raise SwarmStackError(
            f"service {service}: {', '.join(unknown)} has no translation to a Swarm service yet (module_utils/_swarm_stack.py)"
        )
    out = {key: value for key, value in definition.items() if key in _KEPT}
    volumes = list(definition.get("volumes", []))
    volumes += [_tmpfs(spec, service) for spec in definition.get("tmpfs", [])]
    if "shm_size" in definition:
        volumes.append(
            {"type": "tmpfs", "target": "/dev/shm", "tmpfs": {"size": parse_size(definition["shm_size"], f"service {service} shm_size")}}
        )
    if volumes:
        out["volumes"] = volumes
    if definition.get("ports"):
        out["ports"] = [_port(spec, service) for spec in definition["ports"]]
    out["deploy"] = _deploy(definition, service)
    return out


def _instances(services, names, service):
    """The app instances as one definition, each instance's name replaced by the task's."""
    missing = [name for name in names if name not in services]
    if missing:
        raise SwarmStackError(f"the app instances {', '.join(missing)} are not services of the project")
    template = f"{service}{TASK_SLOT}"

    def generic(value, name):
        if isinstance(value, str):
            return re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", template, value)
        if isinstance(value, list):
            return [generic(item, name) for item in value]
        if isinstance(value, dict):
            return {key: generic(item, name) for key, item in value.items()}
        return value

    # Compose-only keys (the container's own name) may differ: Swarm names each task.
    definitions = [generic({k: v for k, v in services[name].items() if k not in _DROPPED}, name) for name in names]
    for name, definition in zip(names[1:], definitions[1:], strict=True):
        if definition != definitions[0]:
            raise SwarmStackError(f"app instance {name} differs from {names[0]} beyond its name: one Swarm service cannot run both")
    return definitions[0]


def _rolled(app, app_service, replicas, app_update):
    """The app instances' service: replicated, spread, updated one task at a time, rolled back on failure."""
    rolled = _service(app, app_service)
    monitor = update_monitor(app.get("healthcheck"))
    update = {"parallelism": 1, "delay": "0s", "order": "start-first", "failure_action": "rollback", "monitor": monitor}
    update.update(app_update or {})
    rolled["deploy"].update(
        {
            "replicas": replicas,
            "placement": {"preferences": [{"spread": f"node.labels.{SERVER_LABEL}"}]},
            "update_config": update,
            "rollback_config": {"parallelism": 1, "order": "start-first", "failure_action": "pause", "monitor": monitor},
        }
    )
    return rolled


def _networks(used, networks, encrypted):
    out = {}
    for name in sorted(used):
        if name not in networks:
            raise SwarmStackError(f"network {name} is not one of the stack's networks ({', '.join(sorted(networks))})")
        spec = {"driver": "overlay", "attachable": True}
        if networks[name].get("internal"):
            spec["internal"] = True
        if encrypted:
            spec["driver_opts"] = {"encrypted": ""}
        out[name] = spec
    return out


def stack_from_project(
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
    """The Swarm stack file for a merged Compose project.

    ``app_service`` names the replicated service the instances in
    ``app_instances`` become; ``edge_service`` the global one on the edge
    servers; ``data_services`` those pinned to their data's server.
    ``networks`` maps each network to ``{internal: bool}`` (docker_engine's
    list); ``secret_digests`` each file secret to its content's digest.
    """
    if not isinstance(project, dict) or not isinstance(project.get("services"), dict):
        raise SwarmStackError("the project must be a Compose project with services")
    services = dict(project["services"])
    # No instances yet (the roles before the app's deploy the data tier first): no app service.
    names = list(app_instances or [])
    if names and app_service in services:
        raise SwarmStackError(f"the project already has a service {app_service}: it cannot also be the app instances' name")
    app = _instances(services, names, app_service) if names else None
    for name in names:
        del services[name]

    out = {}
    for name, definition in sorted(services.items()):
        out[name] = _service(definition, name)
        if name == edge_service:
            out[name]["deploy"]["mode"] = "global"
            out[name]["deploy"]["placement"] = {"constraints": [f"node.labels.{EDGE_LABEL} == true"]}
        elif name in data_services:
            out[name]["deploy"]["replicas"] = 1
            out[name]["deploy"]["placement"] = {"constraints": [f"node.labels.{data_label(name)} == true"]}
            # The old task stops before the new one starts: two servers of one data directory never run at once.
            out[name]["deploy"]["update_config"] = {"parallelism": 1, "order": "stop-first", "failure_action": "pause"}
        else:
            out[name]["deploy"]["replicas"] = 1
    unknown = sorted(set(data_services) - set(out))
    if unknown:
        raise SwarmStackError(f"data service {', '.join(unknown)} is not a service of the project")

    if app is not None:
        out[app_service] = _rolled(app, app_service, len(names), app_update)

    used = {network for definition in out.values() for network in (definition.get("networks") or [])}
    secrets = {}
    for name, spec in (project.get("secrets") or {}).items():
        if "file" not in spec:
            raise SwarmStackError(f"secret {name} must be a file secret")
        digest = (secret_digests or {}).get(name)
        if not digest:
            raise SwarmStackError(f"secret {name} has no digest: its Swarm name carries its content's")
        secrets[name] = {"file": spec["file"], "name": f"{stack}_{name}_{digest[:12]}"}
    result = {"services": out, "networks": _networks(used, networks or {}, encrypted)}
    if secrets:
        result["secrets"] = secrets
    return result
