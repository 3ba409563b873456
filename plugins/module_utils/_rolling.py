# Copyright (c) 2025, Connect platform operations
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0
"""Decision logic of the ``rolling_restart`` module, free of Docker.

A ``Rollout`` talks to the host only through a backend object (the module
gives it one on the Docker SDK and ``docker compose``; the unit tests give it
a fake), so every decision -- what to recreate, in which order, when to drain,
when an instance counts as healthy, what to undo after a failure -- is tested
without a Docker engine.

Backend methods (all required):
  image_id(ref) -> str | None            id of a local image reference
  tag(image_id, ref)                     point ``ref`` at ``image_id``
  instance(service) -> dict | None       {container, image_id, config_hash, running, health}
  config_differs(service) -> bool        Compose would recreate it for its configuration
  recreate(service)                      docker compose up -d --no-deps --force-recreate
  remove(service)                        stop (SIGTERM, grace period) and remove
  probe(service) -> dict                 {health, running, http: dict|None, detail}
  upstream_dir_exists() -> bool          False: no nginx configuration yet, nothing to write
  read_upstream() -> str | None          current upstream file (None: not written yet)
  write_upstream(text)
  nginx_running() -> bool
  nginx_test() -> (ok, output)
  nginx_workers() -> set of pids
  nginx_reload()
  monotonic() -> float; sleep(seconds)
"""

from __future__ import annotations

import re

from ansible_collections.connect.platform.plugins.module_utils._upstream import render_upstream, servers_in

__all__ = ["RolloutError", "Rollout", "natural_order"]


class RolloutError(Exception):
    """The rollout stopped; ``result`` says what happened and what serves now."""

    def __init__(self, msg, result):
        super().__init__(msg)
        self.msg = msg
        self.result = result


def natural_order(names):
    """app1, app2, app10 -- the order nginx lists the instances in."""
    return sorted(names, key=lambda n: [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", n)])


class Rollout:
    """One rolling restart. ``params`` are the module's options."""

    def __init__(self, backend, params, check_mode=False):
        self.b = backend
        self.p = params
        self.check_mode = check_mode
        self.changed = False
        self.warnings = []
        self.instances = {}
        self.events = []
        self._rotation = None
        self._new_id = None
        self._old_id = None
        self._old_previous_id = None

    # -- small helpers -------------------------------------------------
    def _event(self, msg):
        self.events.append(msg)

    def _upstream_text(self, servers):
        u = self.p["upstream"]
        return render_upstream(
            natural_order(servers),
            name=u["name"],
            port=u["port"],
            keepalive=u["keepalive"],
            keepalive_timeout=u["keepalive_timeout"],
            max_fails=u["max_fails"],
            fail_timeout=u["fail_timeout"],
        )

    def _record(self, service, **fields):
        rec = self.instances.setdefault(service, {"service": service, "action": "unchanged"})
        rec.update(fields)
        return rec

    # -- planning --------------------------------------------------------
    def plan(self):
        """Which instances change and why; no side effect."""
        services = self.p["services"]
        ref = self.p["release_image"] or self.p["image"]
        self._new_id = self.b.image_id(ref)
        if self._new_id is None:
            raise RolloutError(f"image {ref} is not on the host; pull or build it before the rollout", self.result())
        todo = []
        for svc in services:
            inst = self.b.instance(svc)
            reason = None
            if inst is None:
                reason = "missing"
            elif not inst["running"]:
                reason = "not running"
            elif inst["image_id"] != self._new_id:
                reason = "new image"
            elif inst.get("health") == "unhealthy":
                reason = "unhealthy"
            elif self.b.config_differs(svc):
                reason = "new configuration"
            elif self.p["force"] or svc in (self.p.get("force_services") or ()):
                reason = "forced"
            self._record(svc, image_before=inst["image_id"] if inst else None, reason=reason)
            if reason:
                todo.append(svc)
        retire = [svc for svc in self.p["retire"] if svc not in services and self.b.instance(svc) is not None]
        for svc in retire:
            self._record(svc, reason="retired")
        return todo, retire

    # -- nginx rotation --------------------------------------------------
    def _rotation_now(self):
        if self._rotation is None:
            text = self.b.read_upstream()
            self._rotation = servers_in(text) if text is not None else None
        return self._rotation

    def _apply_rotation(self, servers, drain):
        """Point nginx at ``servers``; if ``drain``, wait until the workers
        that may still hold requests for the others have exited."""
        text = self._upstream_text(servers)
        previous = self.b.read_upstream()
        if previous == text:
            self._rotation = natural_order(servers)
            return 0.0
        self.b.write_upstream(text)
        self._rotation = natural_order(servers)
        if not self.b.nginx_running():
            return 0.0
        ok, output = self.b.nginx_test()
        if not ok:
            if previous is not None:
                self.b.write_upstream(previous)
                self._rotation = servers_in(previous)
            raise RolloutError(
                f"nginx -t rejected the upstream {natural_order(servers)}: {output.strip()}; the previous upstream is back", self.result()
            )
        old = self.b.nginx_workers()
        start = self.b.monotonic()
        self.b.nginx_reload()
        # The new workers prove the new upstream is loaded.
        while not (self.b.nginx_workers() - old):
            if self.b.monotonic() - start > self.p["reload_timeout"]:
                raise RolloutError(f"nginx started no new worker within {self.p['reload_timeout']} s of the reload", self.result())
            self.b.sleep(0.2)
        if not drain:
            return round(self.b.monotonic() - start, 2)
        while self.b.nginx_workers() & old:
            if self.b.monotonic() - start > self.p["drain_timeout"]:
                self.warnings.append(
                    f"nginx workers still held requests after the {self.p['drain_timeout']} s drain timeout; "
                    "the app's own SIGTERM drain finishes them"
                )
                break
            self.b.sleep(0.25)
        return round(self.b.monotonic() - start, 2)

    def _take_out(self, svc):
        rotation = self._rotation_now()
        if rotation is None or svc not in rotation:
            return 0.0
        rest = [s for s in rotation if s != svc]
        if not rest:
            self.warnings.append(f"{svc} is the only instance in rotation; it is replaced without being taken out")
            return 0.0
        return self._apply_rotation(rest, drain=True)

    def _put_in(self, svc):
        rotation = self._rotation_now()
        if rotation is None:
            return
        if svc not in rotation:
            self._apply_rotation(list(rotation) + [svc], drain=False)

    # -- health ----------------------------------------------------------
    def _healthy(self, probe, expected_version):
        http = probe.get("http") or {}
        if not probe.get("running"):
            return False, "the container is not running"
        if probe.get("health") not in ("healthy", None):
            return False, f"Docker reports {probe.get('health')}"
        if http.get("status") != "healthy":
            return False, f"/api/health answered {probe.get('detail') or http}"
        if expected_version and http.get("version") != expected_version:
            return False, f"/api/health reports version {http.get('version')!r}, expected {expected_version!r}"
        return True, ""

    def _wait_healthy(self, svc, expected_version):
        start = self.b.monotonic()
        reason = "no answer yet"
        wrong_version = 0
        while True:
            probe = self.b.probe(svc)
            ok, reason = self._healthy(probe, expected_version)
            if ok:
                return round(self.b.monotonic() - start, 2), probe
            if not probe.get("running") and probe.get("exited"):
                raise _InstanceFailed(f"{svc} exited during start-up ({probe.get('detail')})")
            if probe.get("health") == "unhealthy":
                raise _InstanceFailed(f"{svc}: Docker reports it unhealthy (last health answer: {probe.get('detail')})")
            # Healthy but another version: the image is not the release; it will not change by waiting.
            http = probe.get("http") or {}
            settled = probe.get("health") in ("healthy", None) and http.get("status") == "healthy"
            wrong_version = wrong_version + 1 if settled and expected_version and http.get("version") != expected_version else 0
            if wrong_version >= 5:
                raise _InstanceFailed(f"{svc}: {reason}")
            if self.b.monotonic() - start > self.p["health_timeout"]:
                raise _InstanceFailed(f"{svc} was not healthy within {self.p['health_timeout']} s: {reason}")
            self.b.sleep(self.p["poll_interval"])

    def _watch(self, svc, expected_version):
        start = self.b.monotonic()
        while self.b.monotonic() - start < self.p["watch_seconds"]:
            ok, reason = self._healthy(self.b.probe(svc), expected_version)
            if not ok:
                raise _InstanceFailed(f"{svc} failed while watched after joining the rotation: {reason}")
            self.b.sleep(self.p["poll_interval"])
        return round(self.b.monotonic() - start, 2)

    # -- the rollout -----------------------------------------------------
    def run(self):
        todo, retire = self.plan()
        self._rotation_now()
        desired = list(self.p["services"])
        upstream_stale = self.b.upstream_dir_exists() and self.b.read_upstream() != self._upstream_text(desired)
        move_tags = self.p["release_image"] is not None and self.b.image_id(self.p["image"]) != self._new_id
        self.changed = bool(todo or retire or upstream_stale or move_tags)
        for svc in todo:
            self._record(svc, action="recreate")
        for svc in retire:
            self._record(svc, action="retire")
        if self.check_mode or not self.changed:
            return self.result()

        if move_tags:
            self._old_id = self.b.image_id(self.p["image"])
            self._old_previous_id = self.b.image_id(self.p["previous_image"]) if self.p["previous_image"] else None
            if self._old_id and self.p["previous_image"]:
                self.b.tag(self._old_id, self.p["previous_image"])
            self.b.tag(self._new_id, self.p["image"])
            self._event(f"{self.p['image']} -> {self._new_id[:19]}")

        done = []
        for svc in todo:
            rec = self._record(svc)
            recreated = False
            try:
                rec["drain_s"] = self._take_out(svc)
                t0 = self.b.monotonic()
                recreated = True
                self.b.recreate(svc)
                rec["recreate_s"] = round(self.b.monotonic() - t0, 2)
                rec["boot_to_healthy_s"], probe = self._wait_healthy(svc, self.p["expected_version"])
                rec["version"] = (probe.get("http") or {}).get("version")
                self._put_in(svc)
                rec["watch_s"] = self._watch(svc, self.p["expected_version"])
                rec["action"] = "recreated"
                done.append(svc)
            except Exception as exc:  # noqa: BLE001 -- any failure (nginx, Docker, health) rolls this release back
                why = exc.msg if isinstance(exc, RolloutError) else str(exc)
                rec["action"] = "failed"
                rec["error"] = why
                for later in todo[todo.index(svc) + 1 :]:
                    self._record(later, action="not started")
                # Not recreated yet (nginx failed while taking it out): it
                # still runs the previous image; only put it back in rotation.
                self._fail(why, done + [svc] if recreated else done, untouched=None if recreated else svc)
        for svc in retire:
            rec = self._record(svc)
            rec["drain_s"] = self._take_out(svc)
            self.b.remove(svc)
            rec["action"] = "retired"
        if self.b.upstream_dir_exists():
            self._apply_rotation(desired, drain=False)
        return self.result()

    def _fail(self, why, touched, untouched=None):
        """Put the previous image back on every touched instance, bring them
        back into rotation (and ``untouched``, never recreated), and stop."""
        if untouched is not None:
            try:
                self._put_in(untouched)
            except Exception:  # noqa: BLE001 -- reported through "serving now"
                pass
        if self._old_id is None:
            if not touched:
                raise RolloutError(f"{why}; serving now: {self._serving()}", self.result())
            # A configuration change cannot be undone here (the file is the
            # inventory's); take the broken instance out of rotation.
            failed = touched[-1]
            try:
                self._take_out(failed)
                kept_out = failed not in (self._rotation or [])
            except Exception:  # noqa: BLE001 -- report below what serves
                kept_out = False
            where = f"{failed} is out of rotation" if kept_out else f"{failed} could not be taken out of rotation"
            raise RolloutError(f"{why}. {where}; serving now: {self._serving()}", self.result())
        self.b.tag(self._old_id, self.p["image"])
        if self._old_previous_id and self.p["previous_image"]:
            self.b.tag(self._old_previous_id, self.p["previous_image"])
        restored, broken = [], []
        for svc in reversed(touched):
            rec = self._record(svc)
            try:
                self._take_out(svc)
                self.b.recreate(svc)
                rec["rollback_boot_to_healthy_s"] = self._wait_healthy(svc, None)[0]
                self._put_in(svc)
                rec["action"] = "rolled_back" if rec.get("action") != "failed" else "failed_rolled_back"
                restored.append(svc)
            except Exception as exc:  # noqa: BLE001 -- report every instance that could not be restored
                broken.append(f"{svc} ({exc})")
        msg = f"{why}. Rolled back {', '.join(restored) or 'nothing'} to the previous image {self._old_id[:19]}"
        if broken:
            msg += f"; could NOT restore {', '.join(broken)}"
        msg += f"; serving now: {self._serving()}"
        raise RolloutError(msg, self.result())

    def _serving(self):
        rotation = self._rotation_now() or []
        parts = []
        for svc in natural_order(rotation):
            http = (self.b.probe(svc).get("http") or {}) if svc in rotation else {}
            parts.append(f"{svc} ({http.get('version', 'unknown version')})")
        return ", ".join(parts) or "no instance in rotation"

    def result(self):
        return {
            "changed": self.changed,
            "instances": [self.instances[k] for k in natural_order(self.instances)],
            "rotation": natural_order(self._rotation) if self._rotation is not None else None,
            "image_id": self._new_id,
            "previous_image_id": self._old_id,
            "events": self.events,
            "warnings": self.warnings,
        }


class _InstanceFailed(Exception):
    pass
