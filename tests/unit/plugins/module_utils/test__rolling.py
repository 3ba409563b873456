"""Unit tests for plugins/module_utils/_rolling.py (Rollout) against a simulated host.

FakeBackend implements every backend method the module docstring lists and
records each call, in order, in ``calls`` (tuples: name, arguments..., and for
probes the state they saw). Its clock only moves when the rollout sleeps or a
recreate takes time, so every duration in the result is exact.
"""

from __future__ import annotations

import copy
import json

import pytest
from ansible_collections.connect.platform.plugins.module_utils._rolling import Rollout, RolloutError, natural_order
from ansible_collections.connect.platform.plugins.module_utils._upstream import render_upstream, servers_in

V0 = "sha256:" + "0" * 64
V1 = "sha256:" + "1" * 64
V2 = "sha256:" + "2" * 64
CURRENT = "connect-app:current"
PREVIOUS = "connect-app:previous"
RELEASE = "connect-app:20261126T101500-3f2a9c1"

READ_ONLY = {"image_id", "instance", "config_differs", "read_upstream", "upstream_dir_exists", "monotonic"}
EFFECTS = ("tag", "recreate", "remove", "write_upstream", "nginx_test", "nginx_reload")

UPSTREAM_NAME = "connect_app"

DEFAULT_PARAMS = {
    "project_dir": "/opt/connect",
    "project_file": "docker-compose.production.yml",
    "project_name": "connect",
    "services": ["app2", "app1"],
    "retire": [],
    "image": CURRENT,
    "release_image": None,
    "previous_image": PREVIOUS,
    "expected_version": None,
    "health_command": ["curl", "-sS", "--max-time", "4", "http://127.0.0.1:3001/api/health"],
    "nginx_container": "connect_nginx",
    "upstream": {
        "file": "/opt/connect/config/nginx/conf.d/upstream.conf",
        "name": "connect_app",
        "port": 3001,
        "keepalive": 32,
        "keepalive_timeout": 4,
        "max_fails": 1,
        "fail_timeout": 5,
    },
    "drain_timeout": 40,
    "reload_timeout": 15,
    "health_timeout": 120,
    "watch_seconds": 10,
    "poll_interval": 1.0,
    "force": False,
    "force_services": [],
}


def make_params(**overrides):
    params = copy.deepcopy(DEFAULT_PARAMS)
    params.update(overrides)
    return params


def release_params(**overrides):
    return make_params(release_image=RELEASE, expected_version="v2", **overrides)


class FakeBackend:
    """A Docker host with app containers behind nginx, simulated.

    boot: behaviour of a container created by ``recreate``, keyed by
    (service, image id) or image id: {mode: healthy|unhealthy|exit|starting,
    polls: probes answering 'starting' first, docker_starting: probes after
    those where /api/health already answers healthy but Docker's own health
    check has not run yet ('starting'), version: what /api/health reports
    (default: versions[image id]), fail_after: healthy probes before it turns
    unhealthy}.
    """

    def __init__(self, params, services=("app1", "app2"), rotation=("app1", "app2")):
        self.params = params
        self.calls = []
        self.now = 1000.0
        self.refs = {CURRENT: V1, PREVIOUS: V0, RELEASE: V2}
        self.versions = {V0: "v0", V1: "v1", V2: "v2"}
        self.boot = {}
        self.recreate_seconds = 1.5
        self.recreate_error = {}
        self.containers = {svc: self._container(V1, {"mode": "healthy"}, booted=True) for svc in services}
        self.config_changed = set()
        self.dir_exists = True
        self.upstream = render_upstream(list(rotation), name=UPSTREAM_NAME) if rotation is not None else None
        self.writes = []
        self.nginx_up = True
        self.nginx_test_result = (True, "nginx: configuration file /etc/nginx/nginx.conf test is successful\n")
        self.workers = {101, 102}
        self.next_pid = 200
        self.loaded = list(rotation) if rotation is not None else None
        self.lingering = set()
        self.linger_left = 0
        self.linger_sleeps = 8  # old workers exit after this many sleeps; None: never
        self.pending = set()
        self.new_workers_after = 0  # sleeps before the new workers show; None: never
        self.new_left = None
        self.at_recreate = {}
        self.at_remove = {}

    # -- simulation helpers ---------------------------------------------
    def _container(self, image_id, behaviour, booted=False):
        return {"image_id": image_id, "running": True, "health": "healthy", "probes": 1000 if booted else 0, "behaviour": behaviour}

    def _state(self):
        return {
            "file": servers_in(self.upstream) if self.upstream is not None else None,
            "loaded": list(self.loaded) if self.loaded is not None else None,
            "old_workers_alive": bool(self.lingering),
        }

    def effects(self):
        return [c for c in self.calls if c[0] in EFFECTS]

    def trace(self, names=EFFECTS + ("probe",)):
        """The calls named, consecutive duplicates collapsed."""
        out = []
        for call in self.calls:
            if call[0] in names and (not out or out[-1] != call):
                out.append(call)
        return out

    def names(self):
        return {c[0] for c in self.calls}

    # -- images ---------------------------------------------------------
    def image_id(self, ref):
        self.calls.append(("image_id", ref))
        if ref in self.refs:
            return self.refs[ref]
        return ref if ref in self.versions else None

    def tag(self, image_id, ref):
        self.calls.append(("tag", image_id, ref))
        assert image_id in self.versions
        self.refs[ref] = image_id

    # -- containers -----------------------------------------------------
    def instance(self, service):
        self.calls.append(("instance", service))
        ct = self.containers.get(service)
        if ct is None:
            return None
        return {
            "container": f"connect-{service}-1",
            "image_id": ct["image_id"],
            "config_hash": None,
            "running": ct["running"],
            "health": ct["health"],
        }

    def config_differs(self, service):
        self.calls.append(("config_differs", service))
        return service in self.config_changed

    def recreate(self, service):
        self.calls.append(("recreate", service))
        self.at_recreate[service] = self._state()
        self.now += self.recreate_seconds
        error = self.recreate_error.pop(service, None)  # fails once; the container stays as it was
        if error:
            raise RuntimeError(error)
        image_id = self.refs[self.params["image"]]
        behaviour = self.boot.get((service, image_id)) or self.boot.get(image_id) or {"mode": "healthy"}
        self.containers[service] = self._container(image_id, behaviour)
        self.config_changed.discard(service)

    def remove(self, service):
        self.calls.append(("remove", service))
        self.at_remove[service] = self._state()
        del self.containers[service]

    def probe(self, service):
        ct = self.containers.get(service)
        if ct is None:
            result = {"running": False, "exited": True, "health": None, "http": None, "detail": "no container"}
        else:
            result = self._probe(ct)
        http = result["http"] or {}
        self.calls.append(("probe", service, result["health"] if result["running"] else "exited", http.get("version")))
        return result

    def _probe(self, ct):
        ct["probes"] += 1
        b = ct["behaviour"]
        version = b.get("version", self.versions[ct["image_id"]])
        mode = b.get("mode", "healthy")
        polls = b.get("polls", 0)
        if mode == "exit":
            ct["running"], ct["health"] = False, None
            return {"running": False, "exited": True, "health": None, "http": None, "detail": "state exited, exit code 1"}
        if mode == "starting" or ct["probes"] <= polls:
            ct["health"] = "starting"
            return {"running": True, "exited": False, "health": "starting", "http": None, "detail": "rc=7 curl: (7) Failed to connect"}
        if ct["probes"] <= polls + b.get("docker_starting", 0):
            ct["health"] = "starting"
            http = {"status": "healthy", "version": version}
            return {"running": True, "exited": False, "health": "starting", "http": http, "detail": json.dumps(http)}
        if mode == "unhealthy" or (b.get("fail_after") is not None and ct["probes"] > polls + b["fail_after"]):
            ct["health"] = "unhealthy"
            http = {"status": "unhealthy", "version": version, "error": "postgres: connection refused"}
            return {"running": True, "exited": False, "health": "unhealthy", "http": http, "detail": json.dumps(http)}
        ct["health"] = "healthy"
        http = {"status": "healthy", "version": version}
        return {"running": True, "exited": False, "health": "healthy", "http": http, "detail": json.dumps(http)}

    # -- upstream file --------------------------------------------------
    def upstream_dir_exists(self):
        self.calls.append(("upstream_dir_exists",))
        return self.dir_exists

    def read_upstream(self):
        self.calls.append(("read_upstream",))
        return self.upstream if self.dir_exists else None

    def write_upstream(self, text):
        self.calls.append(("write_upstream", tuple(servers_in(text))))
        if self.dir_exists:
            self.upstream = text
            self.writes.append(text)

    # -- nginx ----------------------------------------------------------
    def nginx_running(self):
        self.calls.append(("nginx_running",))
        return self.nginx_up

    def nginx_test(self):
        self.calls.append(("nginx_test",))
        return self.nginx_test_result

    def nginx_workers(self):
        workers = set(self.workers) | self.lingering
        self.calls.append(("nginx_workers", frozenset(workers)))
        return workers

    def nginx_reload(self):
        self.calls.append(("nginx_reload",))
        assert self.nginx_up
        new = {self.next_pid, self.next_pid + 1}
        self.next_pid += 2
        self.lingering |= set(self.workers)
        self.linger_left = self.linger_sleeps
        if self.new_workers_after is None:
            return
        self.loaded = servers_in(self.upstream)
        if self.new_workers_after == 0:
            self.workers = new
        else:
            self.pending, self.new_left = new, self.new_workers_after

    # -- clock ----------------------------------------------------------
    def monotonic(self):
        self.calls.append(("monotonic",))
        return self.now

    def sleep(self, seconds):
        self.calls.append(("sleep", seconds))
        self.now += seconds
        if self.lingering and self.linger_left is not None:
            self.linger_left -= 1
            if self.linger_left <= 0:
                self.lingering = set()
        if self.new_left:
            self.new_left -= 1
            if self.new_left == 0:
                self.workers, self.pending = self.pending, set()


def run(fake, params, check_mode=False):
    return Rollout(fake, params, check_mode=check_mode).run()


def fail(fake, params):
    with pytest.raises(RolloutError) as info:
        run(fake, params)
    return info.value


def out_of_rotation(svc, rest):
    """The calls that take ``svc`` out: the file without it, checked, reloaded."""
    return [("write_upstream", tuple(rest)), ("nginx_test",), ("nginx_reload",)]


def into_rotation(servers):
    return [("write_upstream", tuple(servers)), ("nginx_test",), ("nginx_reload",)]


def unhealthy(svc, version):
    """_wait_healthy's message for an instance Docker reports unhealthy (the fake's 503 answer)."""
    answer = f'{{"status": "unhealthy", "version": "{version}", "error": "postgres: connection refused"}}'
    return f"{svc}: Docker reports it unhealthy (last health answer: {answer})"


# -- natural order ----------------------------------------------------------


def test_natural_order():
    assert natural_order(["app10", "app2", "app1", "app3"]) == ["app1", "app2", "app3", "app10"]
    assert natural_order([]) == []


# -- nothing to do, check mode ------------------------------------------------


def test_nothing_to_do_changes_nothing():
    params = make_params()
    fake = FakeBackend(params)
    result = run(fake, params)
    assert result == {
        "changed": False,
        "instances": [
            {"service": "app1", "action": "unchanged", "image_before": V1, "reason": None},
            {"service": "app2", "action": "unchanged", "image_before": V1, "reason": None},
        ],
        "rotation": ["app1", "app2"],
        "image_id": V1,
        "previous_image_id": None,
        "events": [],
        "warnings": [],
    }
    assert fake.names() <= READ_ONLY
    assert fake.refs == {CURRENT: V1, PREVIOUS: V0, RELEASE: V2}


@pytest.mark.parametrize("release", [CURRENT, V1])
def test_release_of_what_already_runs_changes_nothing(release):
    params = make_params(release_image=release, expected_version="v1")
    fake = FakeBackend(params)
    result = run(fake, params)
    assert result["changed"] is False
    assert fake.names() <= READ_ONLY
    assert [i["action"] for i in result["instances"]] == ["unchanged", "unchanged"]


def test_check_mode_reports_and_changes_nothing():
    params = release_params(retire=["app3"])
    fake = FakeBackend(params, services=("app1", "app2", "app3"), rotation=("app1", "app2", "app3"))
    result = run(fake, params, check_mode=True)
    assert result["changed"] is True
    assert result["instances"] == [
        {"service": "app1", "action": "recreate", "image_before": V1, "reason": "new image"},
        {"service": "app2", "action": "recreate", "image_before": V1, "reason": "new image"},
        {"service": "app3", "action": "retire", "reason": "retired"},
    ]
    assert result["image_id"] == V2
    assert result["previous_image_id"] is None
    assert fake.names() <= READ_ONLY
    assert fake.refs[CURRENT] == V1 and set(fake.containers) == {"app1", "app2", "app3"}
    assert servers_in(fake.upstream) == ["app1", "app2", "app3"]


def test_check_mode_reasons():
    params = make_params(services=["app2", "app1", "app3", "app4"])
    fake = FakeBackend(params, services=("app1", "app2", "app3"))
    fake.containers["app3"]["running"] = False
    fake.config_changed = {"app1"}
    result = run(fake, params, check_mode=True)
    assert [(i["service"], i["action"], i["reason"]) for i in result["instances"]] == [
        ("app1", "recreate", "new configuration"),
        ("app2", "unchanged", None),
        ("app3", "recreate", "not running"),
        ("app4", "recreate", "missing"),
    ]
    assert fake.names() <= READ_ONLY


def test_check_mode_force():
    params = make_params(force=True)
    fake = FakeBackend(params)
    result = run(fake, params, check_mode=True)
    assert [(i["service"], i["action"], i["reason"]) for i in result["instances"]] == [
        ("app1", "recreate", "forced"),
        ("app2", "recreate", "forced"),
    ]
    assert fake.names() <= READ_ONLY


# -- a release ----------------------------------------------------------------


def release_fake(params, polls=3):
    fake = FakeBackend(params)
    fake.boot[V2] = {"mode": "healthy", "polls": polls}
    fake.boot[V1] = {"mode": "healthy", "polls": 2}
    return fake


def test_release_order_drain_and_rejoin():
    params = release_params()
    fake = release_fake(params)
    result = run(fake, params)
    assert fake.trace() == [
        ("tag", V1, PREVIOUS),
        ("tag", V2, CURRENT),
        *out_of_rotation("app2", ["app1"]),
        ("recreate", "app2"),
        ("probe", "app2", "starting", None),
        ("probe", "app2", "healthy", "v2"),
        *into_rotation(["app1", "app2"]),
        ("probe", "app2", "healthy", "v2"),
        *out_of_rotation("app1", ["app2"]),
        ("recreate", "app1"),
        ("probe", "app1", "starting", None),
        ("probe", "app1", "healthy", "v2"),
        *into_rotation(["app1", "app2"]),
        ("probe", "app1", "healthy", "v2"),
    ]
    # nginx had loaded the upstream without the instance and its old workers had exited
    assert fake.at_recreate == {
        "app2": {"file": ["app1"], "loaded": ["app1"], "old_workers_alive": False},
        "app1": {"file": ["app2"], "loaded": ["app2"], "old_workers_alive": False},
    }
    assert fake.upstream == render_upstream(["app1", "app2"], name=UPSTREAM_NAME)
    assert fake.loaded == ["app1", "app2"]
    assert result["rotation"] == ["app1", "app2"]
    assert result["warnings"] == []


def test_release_waits_for_old_workers_before_recreate():
    params = release_params()
    fake = release_fake(params)
    run(fake, params)
    first = fake.calls.index(("recreate", "app2"))
    reload = max(i for i, c in enumerate(fake.calls[:first]) if c[0] == "nginx_reload")
    between = fake.calls[reload + 1 : first]
    assert [c[1] for c in between if c[0] == "sleep"] == [0.25] * 8
    seen = [c[1] for c in between if c[0] == "nginx_workers"]
    assert seen[0] == {101, 102, 200, 201}
    assert seen[-1] == {200, 201}


def test_release_moves_the_tags_and_returns_timings():
    params = release_params()
    fake = release_fake(params)
    result = run(fake, params)
    assert fake.refs[CURRENT] == V2
    assert fake.refs[PREVIOUS] == V1
    assert {svc: ct["image_id"] for svc, ct in fake.containers.items()} == {"app1": V2, "app2": V2}
    timings = {"drain_s": 2.0, "recreate_s": 1.5, "boot_to_healthy_s": 3.0, "watch_s": 10.0}
    assert result == {
        "changed": True,
        "instances": [
            {"service": "app1", "action": "recreated", "image_before": V1, "reason": "new image", "version": "v2", **timings},
            {"service": "app2", "action": "recreated", "image_before": V1, "reason": "new image", "version": "v2", **timings},
        ],
        "rotation": ["app1", "app2"],
        "image_id": V2,
        "previous_image_id": V1,
        "events": [f"{CURRENT} -> sha256:222222222222"],
        "warnings": [],
    }


def test_release_by_image_id_without_previous_tag():
    params = make_params(release_image=V2, previous_image=None, expected_version="v2")
    fake = release_fake(params, polls=0)
    result = run(fake, params)
    assert [c for c in fake.calls if c[0] == "tag"] == [("tag", V2, CURRENT)]
    assert fake.refs == {CURRENT: V2, PREVIOUS: V0, RELEASE: V2}
    assert result["previous_image_id"] == V1
    assert [i["boot_to_healthy_s"] for i in result["instances"]] == [0.0, 0.0]


def test_new_instance_joins_after_it_is_healthy():
    params = make_params(services=["app2", "app1", "app3"])
    fake = FakeBackend(params)
    fake.boot[V1] = {"polls": 1}
    result = run(fake, params)
    assert fake.trace() == [
        ("recreate", "app3"),
        ("probe", "app3", "starting", None),
        ("probe", "app3", "healthy", "v1"),
        *into_rotation(["app1", "app2", "app3"]),
        ("probe", "app3", "healthy", "v1"),
    ]
    assert result["instances"][2] == {
        "service": "app3",
        "action": "recreated",
        "image_before": None,
        "reason": "missing",
        "drain_s": 0.0,
        "recreate_s": 1.5,
        "boot_to_healthy_s": 1.0,
        "version": "v1",
        "watch_s": 10.0,
    }
    assert result["rotation"] == ["app1", "app2", "app3"]


def test_stale_upstream_alone_is_rewritten():
    params = make_params()
    fake = FakeBackend(params, rotation=("app1",))
    result = run(fake, params)
    assert result["changed"] is True
    assert fake.effects() == into_rotation(["app1", "app2"])
    assert fake.upstream == render_upstream(["app1", "app2"], name=UPSTREAM_NAME)
    assert fake.names() & {"recreate", "remove", "tag"} == set()


# -- failures of a release ----------------------------------------------------

ROLLED_BACK_BOTH = f"Rolled back app1, app2 to the previous image {V1[:19]}; serving now: app1 (v1), app2 (v1)"


@pytest.mark.parametrize(
    ("boot", "why"),
    [
        ({"mode": "unhealthy"}, unhealthy("app2", "v2")),
        ({"version": "v1.9"}, "app2: /api/health reports version 'v1.9', expected 'v2'"),
        ({"mode": "starting"}, "app2 was not healthy within 120 s: Docker reports starting"),
        ({"mode": "exit"}, "app2 exited during start-up (state exited, exit code 1)"),
    ],
    ids=["unhealthy", "wrong-version", "timeout", "exits"],
)
def test_first_instance_fails_and_is_rolled_back(boot, why):
    params = release_params()
    fake = release_fake(params)
    fake.boot[V2] = boot
    err = fail(fake, params)
    assert err.msg == f"{why}. Rolled back app2 to the previous image {V1[:19]}; serving now: app1 (v1), app2 (v1)"
    assert str(err) == err.msg
    assert fake.refs == {CURRENT: V1, PREVIOUS: V0, RELEASE: V2}
    assert [c for c in fake.calls if c[0] == "tag"] == [
        ("tag", V1, PREVIOUS),
        ("tag", V2, CURRENT),
        ("tag", V1, CURRENT),
        ("tag", V0, PREVIOUS),
    ]
    assert {svc: ct["image_id"] for svc, ct in fake.containers.items()} == {"app1": V1, "app2": V1}
    assert [c[1] for c in fake.calls if c[0] == "recreate"] == ["app2", "app2"]
    assert fake.upstream == render_upstream(["app1", "app2"], name=UPSTREAM_NAME)
    assert fake.loaded == ["app1", "app2"]
    app2 = err.result["instances"][1]
    assert app2["action"] == "failed_rolled_back"
    assert app2["error"] == why
    assert app2["rollback_boot_to_healthy_s"] == 2.0
    # app1 was never reached
    assert err.result["instances"][0] == {"service": "app1", "action": "not started", "image_before": V1, "reason": "new image"}
    assert err.result["rotation"] == ["app1", "app2"]
    assert err.result["previous_image_id"] == V1


def test_first_instance_failure_sequence():
    params = release_params()
    fake = release_fake(params)
    fake.boot[V2] = {"mode": "unhealthy"}
    fail(fake, params)
    assert fake.trace() == [
        ("tag", V1, PREVIOUS),
        ("tag", V2, CURRENT),
        *out_of_rotation("app2", ["app1"]),
        ("recreate", "app2"),
        ("probe", "app2", "unhealthy", "v2"),
        ("tag", V1, CURRENT),
        ("tag", V0, PREVIOUS),
        ("recreate", "app2"),
        ("probe", "app2", "starting", None),
        ("probe", "app2", "healthy", "v1"),
        *into_rotation(["app1", "app2"]),
        ("probe", "app1", "healthy", "v1"),
        ("probe", "app2", "healthy", "v1"),
    ]


def test_wrong_version_fails_after_five_healthy_answers():
    params = release_params()
    fake = release_fake(params)
    fake.boot[V2] = {"version": "v1.9", "polls": 3}
    err = fail(fake, params)
    assert err.msg.startswith("app2: /api/health reports version 'v1.9', expected 'v2'. Rolled back app2 ")
    # starting answers do not count; the fifth healthy answer with the wrong version stops at once (not after 120 s)
    after_recreate = fake.calls[fake.calls.index(("recreate", "app2")) :]
    assert [c for c in after_recreate if c[0] in ("probe", "sleep", "tag")][:16] == [
        ("probe", "app2", "starting", None),
        ("sleep", 1.0),
        ("probe", "app2", "starting", None),
        ("sleep", 1.0),
        ("probe", "app2", "starting", None),
        ("sleep", 1.0),
        ("probe", "app2", "healthy", "v1.9"),
        ("sleep", 1.0),
        ("probe", "app2", "healthy", "v1.9"),
        ("sleep", 1.0),
        ("probe", "app2", "healthy", "v1.9"),
        ("sleep", 1.0),
        ("probe", "app2", "healthy", "v1.9"),
        ("sleep", 1.0),
        ("probe", "app2", "healthy", "v1.9"),
        ("tag", V1, CURRENT),
    ]
    assert err.result["instances"][1]["action"] == "failed_rolled_back"


def test_version_is_not_checked_without_expected_version():
    params = make_params(release_image=RELEASE)
    fake = release_fake(params, polls=0)
    fake.boot[V2] = {"version": "v1.9"}
    result = run(fake, params)
    assert [(i["action"], i["version"], i["boot_to_healthy_s"]) for i in result["instances"]] == [("recreated", "v1.9", 0.0)] * 2


def test_right_version_while_docker_health_still_starts_is_waited_for():
    params = release_params()
    fake = release_fake(params, polls=0)
    fake.boot[V2] = {"docker_starting": 8}
    result = run(fake, params)
    assert [(i["action"], i["boot_to_healthy_s"]) for i in result["instances"]] == [("recreated", 8.0)] * 2


def test_instances_after_the_failed_one_are_not_started():
    params = release_params(services=["app3", "app2", "app1"])
    fake = release_fake(params, polls=0)
    fake.containers["app3"] = fake._container(V1, {"mode": "healthy"}, booted=True)
    fake.upstream = render_upstream(["app1", "app2", "app3"], name=UPSTREAM_NAME)
    fake.loaded = ["app1", "app2", "app3"]
    fake.boot[("app2", V2)] = {"mode": "exit"}
    err = fail(fake, params)
    assert err.msg == (
        "app2 exited during start-up (state exited, exit code 1). "
        f"Rolled back app2, app3 to the previous image {V1[:19]}; serving now: app1 (v1), app2 (v1), app3 (v1)"
    )
    assert [(i["service"], i["action"]) for i in err.result["instances"]] == [
        ("app1", "not started"),
        ("app2", "failed_rolled_back"),
        ("app3", "rolled_back"),
    ]
    assert [c[1] for c in fake.calls if c[0] == "recreate"] == ["app3", "app2", "app2", "app3"]
    assert {svc: ct["image_id"] for svc, ct in fake.containers.items()} == {"app1": V1, "app2": V1, "app3": V1}
    assert fake.upstream == render_upstream(["app1", "app2", "app3"], name=UPSTREAM_NAME)


def test_recreate_error_rolls_back():
    params = release_params()
    fake = release_fake(params)
    fake.recreate_error["app2"] = "docker compose up --detach app2 failed (rc=1): no space left on device"
    err = fail(fake, params)
    assert err.msg == (
        "docker compose up --detach app2 failed (rc=1): no space left on device. "
        f"Rolled back app2 to the previous image {V1[:19]}; serving now: app1 (v1), app2 (v1)"
    )
    assert "recreate_s" not in err.result["instances"][1]


def test_second_instance_fails_and_both_are_rolled_back():
    params = release_params()
    fake = release_fake(params, polls=0)
    fake.boot[("app1", V2)] = {"mode": "unhealthy"}
    err = fail(fake, params)
    assert err.msg == f"{unhealthy('app1', 'v2')}. {ROLLED_BACK_BOTH}"
    assert fake.refs == {CURRENT: V1, PREVIOUS: V0, RELEASE: V2}
    assert {svc: ct["image_id"] for svc, ct in fake.containers.items()} == {"app1": V1, "app2": V1}
    assert [(i["service"], i["action"]) for i in err.result["instances"]] == [("app1", "failed_rolled_back"), ("app2", "rolled_back")]
    rollback = fake.trace()[fake.trace().index(("tag", V0, PREVIOUS)) :]
    assert rollback == [
        ("tag", V0, PREVIOUS),
        ("recreate", "app1"),
        ("probe", "app1", "starting", None),
        ("probe", "app1", "healthy", "v1"),
        *into_rotation(["app1", "app2"]),
        *out_of_rotation("app2", ["app1"]),
        ("recreate", "app2"),
        ("probe", "app2", "starting", None),
        ("probe", "app2", "healthy", "v1"),
        *into_rotation(["app1", "app2"]),
        ("probe", "app1", "healthy", "v1"),
        ("probe", "app2", "healthy", "v1"),
    ]
    # the rollback drains app2 too before recreating it
    assert fake.at_recreate["app2"] == {"file": ["app1"], "loaded": ["app1"], "old_workers_alive": False}
    assert fake.upstream == render_upstream(["app1", "app2"], name=UPSTREAM_NAME)


def test_failure_while_watched_is_rolled_back():
    params = release_params()
    fake = release_fake(params, polls=0)
    fake.boot[V2] = {"fail_after": 4}
    err = fail(fake, params)
    assert err.msg == (
        "app2 failed while watched after joining the rotation: Docker reports unhealthy. "
        f"Rolled back app2 to the previous image {V1[:19]}; serving now: app1 (v1), app2 (v1)"
    )
    trace = fake.trace()
    assert trace[trace.index(("probe", "app2", "unhealthy", "v2")) :] == [
        ("probe", "app2", "unhealthy", "v2"),
        ("tag", V1, CURRENT),
        ("tag", V0, PREVIOUS),
        *out_of_rotation("app2", ["app1"]),
        ("recreate", "app2"),
        ("probe", "app2", "starting", None),
        ("probe", "app2", "healthy", "v1"),
        *into_rotation(["app1", "app2"]),
        ("probe", "app1", "healthy", "v1"),
        ("probe", "app2", "healthy", "v1"),
    ]
    assert fake.containers["app2"]["image_id"] == V1
    assert fake.containers["app1"]["image_id"] == V1
    assert ("recreate", "app1") not in fake.calls


def test_rollback_that_fails_too_is_reported():
    params = release_params()
    fake = release_fake(params)
    fake.boot[V2] = {"mode": "unhealthy"}
    fake.boot[V1] = {"mode": "exit"}
    err = fail(fake, params)
    assert err.msg == (
        f"{unhealthy('app2', 'v2')}. "
        f"Rolled back nothing to the previous image {V1[:19]}; "
        "could NOT restore app2 (app2 exited during start-up (state exited, exit code 1)); serving now: app1 (v1)"
    )
    assert servers_in(fake.upstream) == ["app1"]
    assert err.result["instances"][1]["action"] == "failed"
    assert fake.refs[CURRENT] == V1


# -- configuration-only changes -----------------------------------------------


def test_config_change_failure_keeps_the_instance_out():
    params = make_params()
    fake = FakeBackend(params)
    fake.config_changed = {"app2"}
    fake.boot[("app2", V1)] = {"mode": "unhealthy"}
    err = fail(fake, params)
    assert err.msg == f"{unhealthy('app2', 'v1')}. app2 is out of rotation; serving now: app1 (v1)"
    assert servers_in(fake.upstream) == ["app1"]
    assert fake.loaded == ["app1"]
    # already out since its drain: taking it out again changes nothing
    assert fake.effects() == [*out_of_rotation("app2", ["app1"]), ("recreate", "app2")]
    assert err.result["rotation"] == ["app1"]
    assert err.result["instances"][1]["action"] == "failed"
    assert err.result["previous_image_id"] is None


def test_config_change_succeeds_only_for_the_changed_instance():
    params = make_params()
    fake = FakeBackend(params)
    fake.config_changed = {"app1"}
    result = run(fake, params)
    assert fake.effects() == [
        *out_of_rotation("app1", ["app2"]),
        ("recreate", "app1"),
        *into_rotation(["app1", "app2"]),
    ]
    assert [(i["service"], i["action"], i["reason"]) for i in result["instances"]] == [
        ("app1", "recreated", "new configuration"),
        ("app2", "unchanged", None),
    ]
    assert result["previous_image_id"] is None and result["events"] == []


def test_forcing_one_instance_restarts_it_alone_while_the_others_serve():
    # restart.yml: app1 is recreated out of rotation; app2 stays in the upstream throughout.
    params = make_params(force_services=["app1"])
    fake = FakeBackend(params)
    result = run(fake, params)
    assert fake.effects() == [
        *out_of_rotation("app1", ["app2"]),
        ("recreate", "app1"),
        *into_rotation(["app1", "app2"]),
    ]
    assert [(i["service"], i["action"], i["reason"]) for i in result["instances"]] == [
        ("app1", "recreated", "forced"),
        ("app2", "unchanged", None),
    ]
    assert fake.upstream == render_upstream(["app1", "app2"], name=UPSTREAM_NAME)


def test_config_change_failing_while_watched_is_taken_out():
    # it was back in rotation (_put_in runs before the watch): the failure takes it out again
    params = make_params()
    fake = FakeBackend(params)
    fake.config_changed = {"app2"}
    fake.boot[("app2", V1)] = {"fail_after": 3}
    err = fail(fake, params)
    assert err.msg == (
        "app2 failed while watched after joining the rotation: Docker reports unhealthy. app2 is out of rotation; serving now: app1 (v1)"
    )
    assert fake.trace() == [
        *out_of_rotation("app2", ["app1"]),
        ("recreate", "app2"),
        ("probe", "app2", "healthy", "v1"),
        *into_rotation(["app1", "app2"]),
        ("probe", "app2", "healthy", "v1"),
        ("probe", "app2", "unhealthy", "v1"),
        *out_of_rotation("app2", ["app1"]),
        ("probe", "app1", "healthy", "v1"),
    ]
    assert servers_in(fake.upstream) == ["app1"]
    assert fake.loaded == ["app1"]
    assert err.result["rotation"] == ["app1"]
    app2 = err.result["instances"][1]
    assert app2["action"] == "failed"
    assert app2["error"] == "app2 failed while watched after joining the rotation: Docker reports unhealthy"
    assert err.result["instances"][0]["action"] == "unchanged"


def test_config_change_failure_of_the_only_instance_says_it_is_still_in_rotation():
    params = make_params(services=["app1"])
    fake = FakeBackend(params, services=("app1",), rotation=("app1",))
    fake.config_changed = {"app1"}
    fake.boot[("app1", V1)] = {"mode": "unhealthy"}
    err = fail(fake, params)
    assert err.msg == f"{unhealthy('app1', 'v1')}. app1 could not be taken out of rotation; serving now: app1 (v1)"
    assert fake.effects() == [("recreate", "app1")]
    assert servers_in(fake.upstream) == ["app1"]
    assert err.result["rotation"] == ["app1"]


def test_rerun_after_failed_config_change_does_not_route_to_the_unhealthy_instance():
    params = make_params()
    fake = FakeBackend(params)
    fake.config_changed = {"app2"}
    fake.boot[("app2", V1)] = {"mode": "unhealthy"}
    fail(fake, params)
    assert servers_in(fake.upstream) == ["app1"]
    fake.calls.clear()
    # the next run recreates the unhealthy instance instead of routing to it; it is still unhealthy
    err = fail(fake, params)
    assert err.msg == f"{unhealthy('app2', 'v1')}. app2 is out of rotation; serving now: app1 (v1)"
    assert err.result["instances"][1]["reason"] == "unhealthy"
    assert err.result["instances"][1]["action"] == "failed"
    assert fake.effects() == [("recreate", "app2")]
    assert servers_in(fake.upstream) == ["app1"]
    assert fake.loaded == ["app1"]


def test_unhealthy_instance_is_recreated_and_rejoins():
    params = make_params()
    fake = FakeBackend(params)
    fake.containers["app2"]["health"] = "unhealthy"
    result = run(fake, params)
    assert fake.trace() == [
        *out_of_rotation("app2", ["app1"]),
        ("recreate", "app2"),
        ("probe", "app2", "healthy", "v1"),
        *into_rotation(["app1", "app2"]),
        ("probe", "app2", "healthy", "v1"),
    ]
    assert [(i["service"], i["action"], i["reason"]) for i in result["instances"]] == [
        ("app1", "unchanged", None),
        ("app2", "recreated", "unhealthy"),
    ]
    assert result["changed"] is True


def test_check_mode_unhealthy_reason():
    params = make_params(services=["app1", "app2", "app3", "app4"])
    fake = FakeBackend(params, services=("app1", "app2", "app3", "app4"))
    for svc in ("app1", "app2", "app3"):
        fake.containers[svc]["health"] = "unhealthy"
    fake.containers["app2"]["image_id"] = V0  # a new image is named first
    fake.config_changed = {"app3"}  # unhealthy is named before its configuration
    fake.containers["app4"]["health"] = "starting"  # still starting is no reason
    result = run(fake, params, check_mode=True)
    assert [(i["service"], i["action"], i["reason"]) for i in result["instances"]] == [
        ("app1", "recreate", "unhealthy"),
        ("app2", "recreate", "new image"),
        ("app3", "recreate", "unhealthy"),
        ("app4", "unchanged", None),
    ]
    assert fake.names() <= READ_ONLY


# -- nginx ----------------------------------------------------------------------


def test_nginx_test_failure_restores_the_previous_upstream():
    params = make_params()
    fake = FakeBackend(params)
    fake.config_changed = {"app2"}
    fake.nginx_test_result = (False, 'nginx: [emerg] host not found in upstream "app1:3001"\n')
    original = fake.upstream
    err = fail(fake, params)
    rejected = (
        "nginx -t rejected the upstream ['app1']: nginx: [emerg] host not found in upstream \"app1:3001\"; the previous upstream is back"
    )
    # app2 was never changed: it stays in rotation, nothing to undo.
    assert err.msg == f"{rejected}; serving now: app1 (v1), app2 (v1)"
    # one attempt, rejected and undone; the failure handling does not retry it
    assert fake.effects() == [("write_upstream", ("app1",)), ("nginx_test",), ("write_upstream", ("app1", "app2"))]
    assert fake.upstream == original
    assert err.result["rotation"] == ["app1", "app2"]
    assert err.result["instances"][1]["action"] == "failed"
    assert err.result["instances"][1]["error"] == rejected
    assert "recreate" not in fake.names()


NGINX_TROUBLE = {
    "nginx-test": "nginx -t rejected the upstream ['app1']: nginx: [emerg] unexpected end of file; the previous upstream is back",
    "no-new-worker": "nginx started no new worker within 15 s of the reload",
}


def nginx_trouble_fake(params, trouble):
    fake = release_fake(params)
    if trouble == "nginx-test":
        fake.nginx_test_result = (False, "nginx: [emerg] unexpected end of file")
    else:
        fake.new_workers_after = None
    return fake


@pytest.mark.parametrize("trouble", ["nginx-test", "no-new-worker"])
def test_nginx_failure_during_a_release_puts_the_tags_back(trouble):
    params = release_params()
    fake = nginx_trouble_fake(params, trouble)
    err = fail(fake, params)
    why = NGINX_TROUBLE[trouble]
    assert err.msg.startswith(f"{why}. Rolled back nothing to the previous image {V1[:19]}; ")
    assert err.msg.endswith("; serving now: app1 (v1), app2 (v1)")
    assert fake.refs == {CURRENT: V1, PREVIOUS: V0, RELEASE: V2}
    assert [c for c in fake.calls if c[0] == "tag"] == [
        ("tag", V1, PREVIOUS),
        ("tag", V2, CURRENT),
        ("tag", V1, CURRENT),
        ("tag", V0, PREVIOUS),
    ]
    assert [(i["service"], i["action"]) for i in err.result["instances"]] == [("app1", "not started"), ("app2", "failed")]
    assert err.result["instances"][1]["error"] == why
    assert {svc: ct["image_id"] for svc, ct in fake.containers.items()} == {"app1": V1, "app2": V1}
    assert ("recreate", "app1") not in fake.calls
    assert fake.upstream == render_upstream(["app1", "app2"], name=UPSTREAM_NAME)
    assert err.result["rotation"] == ["app1", "app2"]
    assert err.result["previous_image_id"] == V1


@pytest.mark.parametrize("trouble", ["nginx-test", "no-new-worker"])
def test_nginx_failure_before_the_recreate_leaves_the_instance_alone(trouble):
    params = release_params()
    fake = nginx_trouble_fake(params, trouble)
    err = fail(fake, params)
    assert "recreate" not in fake.names()
    assert "could NOT restore" not in err.msg


def test_first_install_without_nginx_writes_the_upstream_at_the_end():
    params = make_params()
    fake = FakeBackend(params, services=(), rotation=None)
    fake.nginx_up = False
    result = run(fake, params)
    assert fake.trace() == [
        ("recreate", "app2"),
        ("probe", "app2", "healthy", "v1"),
        ("recreate", "app1"),
        ("probe", "app1", "healthy", "v1"),
        ("write_upstream", ("app1", "app2")),
    ]
    assert fake.names() & {"nginx_test", "nginx_reload", "nginx_workers"} == set()
    assert fake.upstream == render_upstream(["app1", "app2"], name=UPSTREAM_NAME)
    assert result["rotation"] == ["app1", "app2"]
    assert [(i["service"], i["reason"], i["image_before"], i["drain_s"]) for i in result["instances"]] == [
        ("app1", "missing", None, 0.0),
        ("app2", "missing", None, 0.0),
    ]


def test_nginx_stopped_with_an_upstream_file_never_reloads():
    params = make_params()
    fake = FakeBackend(params)
    fake.nginx_up = False
    fake.config_changed = {"app2"}
    result = run(fake, params)
    assert fake.effects() == [("write_upstream", ("app1",)), ("recreate", "app2"), ("write_upstream", ("app1", "app2"))]
    assert result["instances"][1]["drain_s"] == 0.0


def test_no_upstream_directory_writes_nothing():
    params = make_params()
    fake = FakeBackend(params, rotation=None)
    fake.dir_exists = False
    result = run(fake, params)
    assert result["changed"] is False
    assert result["rotation"] is None
    assert fake.names() <= READ_ONLY


def test_no_upstream_directory_still_rolls_without_rotation():
    params = make_params()
    fake = FakeBackend(params, rotation=None)
    fake.dir_exists = False
    fake.config_changed = {"app1"}
    result = run(fake, params)
    assert result["changed"] is True
    assert fake.effects() == [("recreate", "app1")]
    assert fake.writes == []
    assert result["rotation"] is None


def test_retire_drains_then_removes():
    params = make_params(retire=["app3", "app4"])
    fake = FakeBackend(params, services=("app1", "app2", "app3"), rotation=("app1", "app2", "app3"))
    result = run(fake, params)
    assert fake.effects() == [*out_of_rotation("app3", ["app1", "app2"]), ("remove", "app3")]
    assert fake.at_remove == {"app3": {"file": ["app1", "app2"], "loaded": ["app1", "app2"], "old_workers_alive": False}}
    assert fake.upstream == render_upstream(["app1", "app2"], name=UPSTREAM_NAME)
    assert set(fake.containers) == {"app1", "app2"}
    assert result["instances"][2] == {"service": "app3", "action": "retired", "reason": "retired", "drain_s": 2.0}
    assert [i["service"] for i in result["instances"]] == ["app1", "app2", "app3"]
    assert result["rotation"] == ["app1", "app2"]
    assert result["changed"] is True


def test_retired_instance_already_gone_only_leaves_the_upstream():
    params = make_params(retire=["app3"])
    fake = FakeBackend(params, rotation=("app1", "app2", "app3"))
    result = run(fake, params)
    assert fake.effects() == into_rotation(["app1", "app2"])
    assert [i["service"] for i in result["instances"]] == ["app1", "app2"]


def test_single_instance_is_replaced_in_place_with_a_warning():
    params = make_params(services=["app1"])
    fake = FakeBackend(params, services=("app1",), rotation=("app1",))
    fake.config_changed = {"app1"}
    result = run(fake, params)
    assert fake.effects() == [("recreate", "app1")]
    assert result["warnings"] == ["app1 is the only instance in rotation; it is replaced without being taken out"]
    assert result["instances"][0]["drain_s"] == 0.0
    assert fake.upstream == render_upstream(["app1"], name=UPSTREAM_NAME)


def test_drain_timeout_warns_and_continues():
    params = make_params()
    fake = FakeBackend(params)
    fake.linger_sleeps = None
    fake.config_changed = {"app2"}
    result = run(fake, params)
    assert result["warnings"] == [
        "nginx workers still held requests after the 40 s drain timeout; the app's own SIGTERM drain finishes them"
    ]
    assert result["instances"][1]["drain_s"] == 40.25
    assert result["instances"][1]["action"] == "recreated"
    assert fake.at_recreate["app2"]["old_workers_alive"] is True
    assert fake.upstream == render_upstream(["app1", "app2"], name=UPSTREAM_NAME)


def test_slow_new_workers_are_waited_for():
    params = make_params()
    fake = FakeBackend(params)
    fake.new_workers_after = 3
    fake.linger_sleeps = 5
    fake.config_changed = {"app2"}
    result = run(fake, params)
    assert result["instances"][1]["drain_s"] == 1.1  # 3 x 0.2 waiting for new workers, then 2 x 0.25 draining
    assert result["warnings"] == []


def test_reload_without_new_workers_is_an_error():
    params = make_params()
    fake = FakeBackend(params)
    fake.new_workers_after = None
    fake.config_changed = {"app2"}
    err = fail(fake, params)
    # nginx never confirmed it stopped sending to app2, which was not changed:
    # the failure handling writes app2 back (and waits for nginx once more).
    assert err.msg == "nginx started no new worker within 15 s of the reload; serving now: app1 (v1), app2 (v1)"
    assert fake.effects() == out_of_rotation("app2", ["app1"]) + [("write_upstream", ("app1", "app2")), ("nginx_test",), ("nginx_reload",)]
    assert err.result["rotation"] == ["app1", "app2"]
    assert err.result["instances"][1]["action"] == "failed"
    assert 30 < fake.now - 1000.0 < 31


# -- missing release image ----------------------------------------------------


@pytest.mark.parametrize("check_mode", [False, True])
def test_missing_release_image_fails_before_any_side_effect(check_mode):
    params = make_params(release_image="connect-app:v3")
    fake = FakeBackend(params)
    with pytest.raises(RolloutError) as info:
        run(fake, params, check_mode=check_mode)
    assert info.value.msg == "image connect-app:v3 is not on the host; pull or build it before the rollout"
    assert fake.calls == [("image_id", "connect-app:v3")]
    assert info.value.result["image_id"] is None
    assert info.value.result["changed"] is False


def test_missing_current_image_without_release_fails():
    params = make_params()
    fake = FakeBackend(params)
    del fake.refs[CURRENT]
    with pytest.raises(RolloutError) as info:
        run(fake, params)
    assert info.value.msg == f"image {CURRENT} is not on the host; pull or build it before the rollout"
    assert fake.calls == [("image_id", CURRENT)]
