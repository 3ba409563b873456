#!/usr/bin/python
# Copyright (c) 2025, Connect platform operations
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rolling_restart
short_description: Health-gated, drained rolling restart of the Connect app instances behind nginx
version_added: 0.2.0
author: Connect platform operations (@connect-platform)
description:
  - Brings the app instances of a Docker Compose project to the image and configuration the
    project file asks for, one instance at a time, in the order given (the seed's order is
    V(app2), V(app1), then V(app3)).
  - "For each instance that differs (missing, stopped, another image, or a configuration Compose
    would recreate it for): take it out of nginx's upstream (rewrite the upstream file, C(nginx -t), reload); wait
    until every nginx worker that was running before the reload has exited, which means every
    request nginx had sent to the instance has finished (bounded by O(drain_timeout)); recreate
    it with C(docker compose up --no-deps --force-recreate); wait until Docker reports it healthy
    AND its health endpoint reports O(expected_version) (polled every O(poll_interval) seconds,
    bounded by O(health_timeout)); put it back into the upstream; watch it for O(watch_seconds)."
  - With O(release_image), the local tag O(image) (the one the project file names) is moved to
    the release and the image it pointed at is tagged O(previous_image) first.
  - "On any failure during a release: the tags are put back, every instance already touched is
    recreated on the previous image, health-checked and returned to rotation, and the module
    fails with a message that says what happened and which instances serve which version now."
  - Instances listed in O(retire) (the third instance after peak season) are taken out of
    rotation, drained, stopped and removed.
  - Instances that already match are not touched; nothing changes then (C(changed=false)).
  - Check mode reports which instances would be recreated or retired, and changes nothing.
requirements:
  - Docker SDK for Python (C(python3-docker)) on the managed host.
  - Docker Compose v2 (C(docker compose)) on the managed host.
options:
  project_dir:
    description: Directory of the Compose project.
    type: path
    default: /opt/connect
  project_file:
    description: The project file, relative to O(project_dir).
    type: str
    default: docker-compose.production.yml
  project_name:
    description: Compose project name.
    type: str
    default: connect
  services:
    description: The app services, in rollout order. All of them form the upstream at the end.
    type: list
    elements: str
    required: true
  retire:
    description: App services to take out of rotation, drain and remove when they still run.
    type: list
    elements: str
    default: []
  image:
    description: The image reference the project file gives the app services (a local tag).
    type: str
    required: true
  release_image:
    description:
      - The image to release (a local reference or id). O(image) is moved to it.
      - Omit to bring the instances to what O(image) already points at (configuration changes).
    type: str
  previous_image:
    description: Local tag kept on the image O(image) pointed at before a release.
    type: str
  expected_version:
    description: The version the health endpoint must report before an instance rejoins. Omit to accept any.
    type: str
  health_command:
    description:
      - Command run inside the instance that prints the health endpoint's JSON
        (C(status) and C(version) keys).
    type: list
    elements: str
    default: [curl, -sS, --max-time, '4', 'http://127.0.0.1:3001/api/health']
  nginx_container:
    description: The nginx container. When it does not run (first install), no rotation is done.
    type: str
    default: connect_nginx
  upstream:
    description: Where the upstream file is and how it is rendered.
    type: dict
    required: true
    suboptions:
      file:
        description: Host path of the upstream file nginx includes. Not written when its directory does not exist.
        type: path
        required: true
      name:
        description:
          - Upstream name, the one nginx's C(proxy_pass) uses (the stack contract's
            C(compose_stack_app_upstream.name)).
        type: str
        required: true
      port:
        description: App port.
        type: int
        default: 3001
      keepalive:
        description: Idle keep-alive connections per worker.
        type: int
        default: 32
      keepalive_timeout:
        description: Seconds an idle upstream connection is kept.
        type: int
        default: 4
      max_fails:
        description: Failures before an instance is skipped.
        type: int
        default: 1
      fail_timeout:
        description: Seconds an instance is skipped.
        type: int
        default: 5
  drain_timeout:
    description: Seconds to wait for nginx workers that may hold requests for the instance to finish.
    type: int
    default: 40
  reload_timeout:
    description: Seconds nginx has to start new workers after a reload.
    type: int
    default: 15
  health_timeout:
    description: Seconds an instance has to become healthy (Docker and the health endpoint).
    type: int
    default: 120
  watch_seconds:
    description: Seconds an instance is watched after rejoining; it must stay healthy.
    type: int
    default: 10
  poll_interval:
    description: Seconds between health polls.
    type: float
    default: 1.0
  force:
    description: Recreate every instance even when it matches.
    type: bool
    default: false
  force_services:
    description:
      - Recreate these instances even when they match (a safe restart of one instance); the others of O(services) stay
        in nginx's upstream untouched.
    type: list
    elements: str
    default: []
notes:
  - Runs on the Docker host; the app images must already be there (the module does not pull).
  - nginx resolves upstream names when it loads its configuration, so a recreated instance (new
    IP address) is put back by a reload, which this module does.
seealso:
  - module: community.docker.docker_compose_v2
"""

EXAMPLES = r"""
- name: Release v2 onto the app instances, app2 first
  connect.platform.rolling_restart:
    services: [app2, app1]
    image: connect-app:current
    release_image: connect-app:20261126T101500-3f2a9c1
    previous_image: connect-app:previous
    expected_version: 3f2a9c1
    upstream:
      file: /opt/connect/config/nginx/conf.d/upstream.conf
      name: connect_app

- name: Peak season is over, app3 leaves
  connect.platform.rolling_restart:
    services: [app2, app1]
    retire: [app3]
    image: connect-app:current
    upstream:
      file: /opt/connect/config/nginx/conf.d/upstream.conf
      name: connect_app
"""

RETURN = r"""
instances:
  description: One entry per app service, in natural order.
  returned: always
  type: list
  elements: dict
  contains:
    service: {description: Compose service, type: str}
    action:
      description: "unchanged, recreate (check mode), recreated, retire (check mode), retired, failed, not started,
        rolled_back or failed_rolled_back"
      type: str
    reason: {description: "Why it changed: missing, not running, new image, unhealthy, new configuration, forced, retired", type: str}
    image_before: {description: Image id before, type: str}
    version: {description: Version its health endpoint reported after the restart, type: str}
    drain_s: {description: Seconds from the reload that took it out of rotation until nginx's old workers had finished, type: float}
    recreate_s: {description: Seconds docker compose took to recreate it, type: float}
    boot_to_healthy_s: {description: Seconds from recreation until healthy with the expected version, type: float}
    watch_s: {description: Seconds it was watched after rejoining, type: float}
    error: {description: What failed, type: str}
  sample:
    - {service: app1, action: recreated, reason: new image, drain_s: 5.3, recreate_s: 1.2,
       boot_to_healthy_s: 3.1, watch_s: 10.0, version: v2}
rotation:
  description: The services in nginx's upstream at the end, or null when there is no nginx configuration yet.
  returned: always
  type: list
  elements: str
image_id:
  description: Id of the image the instances run now (or would run, in check mode).
  returned: always
  type: str
previous_image_id:
  description: Id of the image O(image) pointed at before a release.
  returned: when a release moved the tag
  type: str
events:
  description: Notable steps, in order.
  returned: always
  type: list
  elements: str
"""

import json
import os
import time
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    import docker
    from docker.errors import NotFound

    HAS_DOCKER = True
    DOCKER_IMPORT_ERROR = None
except ImportError:
    HAS_DOCKER = False
    DOCKER_IMPORT_ERROR = traceback.format_exc()

from ansible_collections.connect.platform.plugins.module_utils._rolling import Rollout, RolloutError


class DockerBackend:
    """The host side of a rollout: the Docker SDK plus ``docker compose``."""

    def __init__(self, module, client):
        self.m = module
        self.c = client
        p = module.params
        self.project = p["project_name"]
        self.compose = [
            "docker",
            "compose",
            "--project-directory",
            p["project_dir"],
            "-f",
            os.path.join(p["project_dir"], p["project_file"]),
            "-p",
            self.project,
        ]
        self.upstream_file = p["upstream"]["file"]
        self.health_command = p["health_command"]
        self.nginx = p["nginx_container"]

    def _run(self, args):
        rc, out, err = self.m.run_command(self.compose + args)
        if rc != 0:
            raise RuntimeError(f"docker compose {' '.join(args)} failed (rc={rc}): {err.strip() or out.strip()}")
        return out + err

    def image_id(self, ref):
        try:
            return self.c.images.get(ref).id
        except NotFound:
            return None

    def tag(self, image_id, ref):
        repo, _colon, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "latest")
        self.c.images.get(image_id).tag(repo, tag)

    def _container(self, service):
        found = self.c.containers.list(
            all=True, filters={"label": [f"com.docker.compose.project={self.project}", f"com.docker.compose.service={service}"]}
        )
        return found[0] if found else None

    def instance(self, service):
        ct = self._container(service)
        if ct is None:
            return None
        state = ct.attrs.get("State", {})
        return {
            "container": ct.name,
            "image_id": ct.attrs.get("Image"),
            "running": bool(state.get("Running")),
            "health": (state.get("Health") or {}).get("Status"),
        }

    def config_differs(self, service):
        # Compose's own verdict: `config --hash` leaves env_file unresolved
        # (Compose 2.26), so its hash never matches the container's label.
        out = self._run(["--dry-run", "up", "--detach", "--no-deps", "--pull", "never", "--no-build", service])
        return any(word in out for word in (" Recreate", " Create"))

    def recreate(self, service):
        self._run(["up", "--detach", "--no-deps", "--force-recreate", "--pull", "never", "--no-build", service])

    def remove(self, service):
        ct = self._container(service)
        if ct is not None:
            ct.stop(timeout=int(ct.attrs.get("Config", {}).get("StopTimeout") or 40))
            ct.remove()

    def probe(self, service):
        ct = self._container(service)
        if ct is None:
            return {"running": False, "exited": True, "health": None, "http": None, "detail": "no container"}
        state = ct.attrs.get("State", {})
        result = {
            "running": bool(state.get("Running")),
            "exited": state.get("Status") in ("exited", "dead"),
            "health": (state.get("Health") or {}).get("Status"),
            "http": None,
            "detail": f"state {state.get('Status')}, exit code {state.get('ExitCode')}",
        }
        if not result["running"]:
            return result
        try:
            rc, out = ct.exec_run(self.health_command)
        except docker.errors.APIError as exc:
            result["detail"] = f"exec failed: {exc}"
            return result
        text = (out or b"").decode("utf-8", "replace").strip()
        try:
            result["http"] = json.loads(text)
            result["detail"] = text[:300]
        except ValueError:
            result["detail"] = f"rc={rc} {text[:300]}"
        return result

    def upstream_dir_exists(self):
        return os.path.isdir(os.path.dirname(self.upstream_file))

    def read_upstream(self):
        try:
            with open(self.upstream_file, encoding="utf-8") as fh:
                return fh.read()
        except FileNotFoundError:
            return None

    def write_upstream(self, text):
        directory = os.path.dirname(self.upstream_file)
        if not os.path.isdir(directory):
            return
        tmp = f"{self.upstream_file}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.upstream_file)

    def _nginx(self):
        try:
            ct = self.c.containers.get(self.nginx)
        except NotFound:
            return None
        return ct if ct.attrs.get("State", {}).get("Running") else None

    def nginx_running(self):
        return self._nginx() is not None

    def nginx_test(self):
        rc, out = self._nginx().exec_run(["nginx", "-t"])
        return rc == 0, (out or b"").decode("utf-8", "replace")

    def nginx_workers(self):
        top = self._nginx().top(ps_args="-eo pid,args")
        titles = top.get("Titles") or []
        pid_i = titles.index("PID") if "PID" in titles else 0
        workers = set()
        for row in top.get("Processes") or []:
            if any("nginx: worker process" in col for col in row):
                workers.add(int(row[pid_i]))
        return workers

    def nginx_reload(self):
        rc, out = self._nginx().exec_run(["nginx", "-s", "reload"])
        if rc != 0:
            raise RuntimeError(f"nginx -s reload failed: {(out or b'').decode('utf-8', 'replace').strip()}")

    @staticmethod
    def monotonic():
        return time.monotonic()

    @staticmethod
    def sleep(seconds):
        time.sleep(seconds)


def _fail(module, msg, result):
    for warning in result.pop("warnings", []):
        module.warn(warning)
    module.fail_json(msg=msg, **result)


def main():
    upstream_spec = dict(
        file=dict(type="path", required=True),
        name=dict(type="str", required=True),
        port=dict(type="int", default=3001),
        keepalive=dict(type="int", default=32),
        keepalive_timeout=dict(type="int", default=4),
        max_fails=dict(type="int", default=1),
        fail_timeout=dict(type="int", default=5),
    )
    module = AnsibleModule(
        argument_spec=dict(
            project_dir=dict(type="path", default="/opt/connect"),
            project_file=dict(type="str", default="docker-compose.production.yml"),
            project_name=dict(type="str", default="connect"),
            services=dict(type="list", elements="str", required=True),
            retire=dict(type="list", elements="str", default=[]),
            image=dict(type="str", required=True),
            release_image=dict(type="str"),
            previous_image=dict(type="str"),
            expected_version=dict(type="str"),
            health_command=dict(
                type="list", elements="str", default=["curl", "-sS", "--max-time", "4", "http://127.0.0.1:3001/api/health"]
            ),
            nginx_container=dict(type="str", default="connect_nginx"),
            upstream=dict(type="dict", required=True, options=upstream_spec),
            drain_timeout=dict(type="int", default=40),
            reload_timeout=dict(type="int", default=15),
            health_timeout=dict(type="int", default=120),
            watch_seconds=dict(type="int", default=10),
            poll_interval=dict(type="float", default=1.0),
            force=dict(type="bool", default=False),
            force_services=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not p["services"]:
        module.fail_json(msg="services is empty: name at least one app service to roll")
    overlap = set(p["services"]) & set(p["retire"])
    if overlap:
        module.fail_json(msg=f"{', '.join(sorted(overlap))} cannot be both rolled and retired")
    for key in ("drain_timeout", "reload_timeout", "health_timeout"):
        if p[key] < 1:
            module.fail_json(msg=f"{key} must be at least 1 second, got {p[key]}")
    if p["watch_seconds"] < 0 or p["poll_interval"] <= 0:
        module.fail_json(msg="watch_seconds must be >= 0 and poll_interval > 0")
    if not HAS_DOCKER:
        module.fail_json(msg=missing_required_lib("docker (python3-docker)"), exception=DOCKER_IMPORT_ERROR)
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # noqa: BLE001 -- any failure here means no engine to talk to
        module.fail_json(msg=f"cannot reach the Docker engine: {exc}")

    rollout = Rollout(DockerBackend(module, client), p, check_mode=module.check_mode)
    try:
        result = rollout.run()
    except RolloutError as exc:
        _fail(module, exc.msg, exc.result)
    except (RuntimeError, ValueError, docker.errors.APIError, OSError) as exc:
        _fail(module, f"rolling restart stopped: {exc}", rollout.result())
    for warning in result.pop("warnings", []):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
