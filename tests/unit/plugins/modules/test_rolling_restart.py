"""Tests for plugins/modules/rolling_restart.py that need no Docker engine:
the argument checks of main() and DockerBackend's parsing, on fake clients."""

from __future__ import annotations

import json
from types import SimpleNamespace

import ansible.module_utils._internal
import pytest
from ansible_collections.connect.platform.plugins.modules import rolling_restart
from ansible_collections.connect.platform.tests.unit.plugins.modules.utils import patch_module_args


def module_args(tmp_path, **overrides):
    args = {
        "services": ["app2", "app1"],
        "image": "connect-app:current",
        "upstream": {"file": str(tmp_path / "conf.d" / "upstream.conf"), "name": "connect_app"},
    }
    args.update(overrides)
    return args


def run_main(args, capsys):
    """main()'s JSON answer and exit code."""
    with patch_module_args(args), pytest.raises(SystemExit) as info:
        rolling_restart.main()
    out = capsys.readouterr().out
    return json.loads(out[out.index("{") :]), info.value.code


class Unreachable:
    """Stands in for the docker package: main() must not get this far."""

    @staticmethod
    def from_env():
        raise AssertionError("main() reached the Docker engine")


@pytest.fixture
def no_engine(monkeypatch):
    monkeypatch.setattr(rolling_restart, "docker", Unreachable, raising=False)


# -- argument checks ---------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"services": []}, "services is empty: name at least one app service to roll"),
        ({"retire": ["app3", "app1"]}, "app1 cannot be both rolled and retired"),
        ({"services": ["app2", "app1", "app3"], "retire": ["app3", "app1", "app4"]}, "app1, app3 cannot be both rolled and retired"),
        ({"drain_timeout": 0}, "drain_timeout must be at least 1 second, got 0"),
        ({"reload_timeout": 0}, "reload_timeout must be at least 1 second, got 0"),
        ({"health_timeout": -5}, "health_timeout must be at least 1 second, got -5"),
        ({"watch_seconds": -1}, "watch_seconds must be >= 0 and poll_interval > 0"),
        ({"poll_interval": 0}, "watch_seconds must be >= 0 and poll_interval > 0"),
    ],
)
def test_argument_checks(tmp_path, capsys, no_engine, overrides, message):
    result, code = run_main(module_args(tmp_path, **overrides), capsys)
    assert code == 1
    assert result["failed"] is True
    assert result["msg"] == message


def test_required_options(tmp_path, capsys, no_engine):
    result, code = run_main({"services": ["app1"]}, capsys)
    assert code == 1
    assert result["msg"] == "missing required arguments: image, upstream"


def test_the_upstream_name_is_required(tmp_path, capsys, no_engine):
    result, code = run_main(module_args(tmp_path, upstream={"file": str(tmp_path / "upstream.conf")}), capsys)
    assert code == 1
    assert result["msg"] == "missing required arguments: name found in upstream"


def test_missing_docker_sdk_names_python3_docker(tmp_path, capsys, monkeypatch, no_engine):
    monkeypatch.setattr(rolling_restart, "HAS_DOCKER", False)
    monkeypatch.setattr(rolling_restart, "DOCKER_IMPORT_ERROR", "Traceback ...\nModuleNotFoundError: No module named 'docker'\n")
    result, code = run_main(module_args(tmp_path), capsys)
    assert code == 1
    assert result["msg"].startswith("Failed to import the required Python library (docker (python3-docker)) on ")
    assert "python3-docker" in result["msg"]


def test_argument_checks_come_before_the_sdk_check(tmp_path, capsys, monkeypatch, no_engine):
    monkeypatch.setattr(rolling_restart, "HAS_DOCKER", False)
    result = run_main(module_args(tmp_path, drain_timeout=0), capsys)[0]
    assert result["msg"] == "drain_timeout must be at least 1 second, got 0"


def test_unreachable_engine(tmp_path, capsys, monkeypatch):
    class NoEngine:
        @staticmethod
        def from_env():
            raise ConnectionError("Error while fetching server API version: [Errno 2] No such file or directory")

    monkeypatch.setattr(rolling_restart, "docker", NoEngine, raising=False)
    monkeypatch.setattr(rolling_restart, "HAS_DOCKER", True)
    result, code = run_main(module_args(tmp_path), capsys)
    assert code == 1
    assert result["msg"] == "cannot reach the Docker engine: Error while fetching server API version: [Errno 2] No such file or directory"


class PingOnly:
    def ping(self):
        return True


def engine(client):
    return SimpleNamespace(from_env=lambda: client, errors=SimpleNamespace(APIError=RuntimeError))


def test_rollout_result_and_warnings_reach_ansible(tmp_path, capsys, monkeypatch):
    seen = {}

    class FakeRollout:
        def __init__(self, backend, params, check_mode=False):
            seen.update(backend=backend, params=dict(params), check_mode=check_mode)

        def run(self):
            return {
                "changed": True,
                "instances": [],
                "rotation": ["app1", "app2"],
                "image_id": "sha256:2",
                "events": [],
                "warnings": ["w1"],
            }

    monkeypatch.setattr(rolling_restart, "docker", engine(PingOnly()), raising=False)
    monkeypatch.setattr(rolling_restart, "HAS_DOCKER", True)
    monkeypatch.setattr(rolling_restart, "Rollout", FakeRollout)
    # Once controller code is imported (the filter tests do), ansible-core 2.19 sends module
    # warnings to the controller's display instead of the result; this test plays the module side.
    monkeypatch.setattr(ansible.module_utils._internal, "is_controller", False, raising=False)
    result, code = run_main(module_args(tmp_path, _ansible_check_mode=True), capsys)
    assert code == 0
    assert result["changed"] is True
    assert result["rotation"] == ["app1", "app2"]
    # ansible-core 2.19 returns warnings as WarningSummary dicts, older ones as strings
    assert [w["event"]["msg"] if isinstance(w, dict) else w for w in result["warnings"]] == ["w1"]
    assert seen["check_mode"] is True
    assert isinstance(seen["backend"], rolling_restart.DockerBackend)
    params = seen["params"]
    assert {k: params[k] for k in ("drain_timeout", "reload_timeout", "health_timeout", "watch_seconds", "poll_interval", "force")} == {
        "drain_timeout": 40,
        "reload_timeout": 15,
        "health_timeout": 120,
        "watch_seconds": 10,
        "poll_interval": 1.0,
        "force": False,
    }
    assert params["upstream"] == {
        "file": str(tmp_path / "conf.d" / "upstream.conf"),
        "name": "connect_app",
        "port": 3001,
        "keepalive": 32,
        "keepalive_timeout": 4,
        "max_fails": 1,
        "fail_timeout": 5,
    }
    assert params["retire"] == [] and params["release_image"] is None and params["previous_image"] is None


def test_rollout_error_becomes_fail_json_with_the_result(tmp_path, capsys, monkeypatch):
    class FailingRollout:
        def __init__(self, backend, params, check_mode=False):
            pass

        def run(self):
            raise rolling_restart.RolloutError("app2 exited during start-up", {"changed": True, "rotation": ["app1"]})

    monkeypatch.setattr(rolling_restart, "docker", engine(PingOnly()), raising=False)
    monkeypatch.setattr(rolling_restart, "HAS_DOCKER", True)
    monkeypatch.setattr(rolling_restart, "Rollout", FailingRollout)
    result, code = run_main(module_args(tmp_path), capsys)
    assert code == 1
    assert result["msg"] == "app2 exited during start-up"
    assert result["rotation"] == ["app1"]
    assert result["changed"] is True


# -- DockerBackend on fake clients --------------------------------------------


class FakeImage:
    def __init__(self, image_id, log):
        self.id = image_id
        self.log = log

    def tag(self, repository, tag=None):
        self.log.append((self.id, repository, tag))
        return True


class FakeImages:
    def __init__(self, known=()):
        self.log = []
        self.known = set(known)

    def get(self, ref):
        if self.known and ref not in self.known:
            raise rolling_restart.NotFound(f"No such image: {ref}")
        return FakeImage(ref if ref.startswith("sha256:") else f"sha256:of-{ref}", self.log)


class FakeContainer:
    def __init__(self, name="connect_nginx", state=None, top=None, exec_results=None):
        self.name = name
        self.attrs = {"State": state if state is not None else {"Running": True, "Status": "running"}, "Image": "sha256:1"}
        self._top = top
        self.top_args = []
        self.exec_results = list(exec_results or [])
        self.exec_args = []

    def top(self, ps_args=None):
        self.top_args.append(ps_args)
        return self._top

    def exec_run(self, cmd):
        self.exec_args.append(cmd)
        return self.exec_results.pop(0)


class FakeContainers:
    def __init__(self, by_name=None, listed=()):
        self.by_name = by_name or {}
        self.listed = list(listed)
        self.list_args = []

    def get(self, name):
        if name not in self.by_name:
            raise rolling_restart.NotFound(f"No such container: {name}")
        return self.by_name[name]

    def list(self, **kwargs):
        self.list_args.append(kwargs)
        return self.listed


def backend(tmp_path, images=None, containers=None, run_command=None):
    params = {
        "project_name": "connect",
        "project_dir": "/opt/connect",
        "project_file": "docker-compose.production.yml",
        "upstream": {"file": str(tmp_path / "conf.d" / "upstream.conf")},
        "health_command": ["curl", "-sS", "http://127.0.0.1:3001/api/health"],
        "nginx_container": "connect_nginx",
    }
    module = SimpleNamespace(params=params, run_command=run_command)
    client = SimpleNamespace(images=images or FakeImages(), containers=containers or FakeContainers())
    return rolling_restart.DockerBackend(module, client)


@pytest.mark.parametrize(
    ("ref", "repository", "tag"),
    [
        ("connect-app:current", "connect-app", "current"),
        ("connect-app:20261126T101500-3f2a9c1", "connect-app", "20261126T101500-3f2a9c1"),
        ("localhost:5000/x/y:tag", "localhost:5000/x/y", "tag"),
        ("localhost:5000/x/y", "localhost:5000/x/y", "latest"),
        ("registry.example.com/connect/app:previous", "registry.example.com/connect/app", "previous"),
        ("repo", "repo", "latest"),
    ],
)
def test_tag_splits_the_reference(tmp_path, ref, repository, tag):
    images = FakeImages()
    backend(tmp_path, images=images).tag("sha256:abc", ref)
    assert images.log == [("sha256:abc", repository, tag)]


def test_image_id_of_a_missing_reference_is_none(tmp_path):
    images = FakeImages(known={"connect-app:current"})
    b = backend(tmp_path, images=images)
    assert b.image_id("connect-app:current") == "sha256:of-connect-app:current"
    assert b.image_id("connect-app:v3") is None


TOP = {
    "Titles": ["PID", "COMMAND"],
    "Processes": [
        ["10", "nginx: master process nginx"],
        ["11", "nginx: worker process"],
        ["12", "nginx: worker process is shutting down"],
    ],
}


def test_nginx_workers_parses_top(tmp_path):
    nginx = FakeContainer(top=TOP)
    b = backend(tmp_path, containers=FakeContainers({"connect_nginx": nginx}))
    assert b.nginx_workers() == {11, 12}
    assert nginx.top_args == ["-eo pid,args"]


def test_nginx_workers_finds_the_pid_column(tmp_path):
    top = {"Titles": ["UID", "PID", "CMD"], "Processes": [["101", "7", "nginx: master process"], ["101", "8", "nginx: worker process"]]}
    b = backend(tmp_path, containers=FakeContainers({"connect_nginx": FakeContainer(top=top)}))
    assert b.nginx_workers() == {8}


@pytest.mark.parametrize(
    ("by_name", "running"),
    [
        ({"connect_nginx": FakeContainer()}, True),
        ({"connect_nginx": FakeContainer(state={"Running": False, "Status": "exited"})}, False),
        ({}, False),
    ],
)
def test_nginx_running(tmp_path, by_name, running):
    assert backend(tmp_path, containers=FakeContainers(by_name)).nginx_running() is running


def test_nginx_test_and_reload(tmp_path):
    nginx = FakeContainer(exec_results=[(1, b"nginx: [emerg] bad\n"), (1, b"signal failed\n")])
    b = backend(tmp_path, containers=FakeContainers({"connect_nginx": nginx}))
    assert b.nginx_test() == (False, "nginx: [emerg] bad\n")
    with pytest.raises(RuntimeError, match=r"^nginx -s reload failed: signal failed$"):
        b.nginx_reload()
    assert nginx.exec_args == [["nginx", "-t"], ["nginx", "-s", "reload"]]


def test_probe_parses_the_health_answer(tmp_path):
    app = FakeContainer(
        name="connect-app2-1",
        state={"Running": True, "Status": "running", "Health": {"Status": "healthy"}},
        exec_results=[(0, b'{"status": "healthy", "version": "v2"}\n')],
    )
    containers = FakeContainers(listed=[app])
    result = backend(tmp_path, containers=containers).probe("app2")
    assert result == {
        "running": True,
        "exited": False,
        "health": "healthy",
        "http": {"status": "healthy", "version": "v2"},
        "detail": '{"status": "healthy", "version": "v2"}',
    }
    assert containers.list_args == [
        {"all": True, "filters": {"label": ["com.docker.compose.project=connect", "com.docker.compose.service=app2"]}}
    ]
    assert app.exec_args == [["curl", "-sS", "http://127.0.0.1:3001/api/health"]]


def test_probe_of_an_exited_container_does_not_exec(tmp_path):
    app = FakeContainer(name="connect-app2-1", state={"Running": False, "Status": "exited", "ExitCode": 3})
    result = backend(tmp_path, containers=FakeContainers(listed=[app])).probe("app2")
    assert result == {"running": False, "exited": True, "health": None, "http": None, "detail": "state exited, exit code 3"}
    assert app.exec_args == []


def test_probe_of_a_non_json_answer(tmp_path):
    app = FakeContainer(name="connect-app2-1", exec_results=[(7, b"curl: (7) Failed to connect")])
    result = backend(tmp_path, containers=FakeContainers(listed=[app])).probe("app2")
    assert result["http"] is None
    assert result["detail"] == "rc=7 curl: (7) Failed to connect"


def test_probe_without_container(tmp_path):
    assert backend(tmp_path).probe("app9") == {"running": False, "exited": True, "health": None, "http": None, "detail": "no container"}


@pytest.mark.parametrize(
    ("out", "differs"),
    [
        (" Container connect-app1-1  Running\n", False),
        (" Container connect-app1-1  Recreate\n Container connect-app1-1  Recreated\n", True),
        (" Container connect-app1-1  Creating\n Container connect-app1-1  Created\n", True),
    ],
)
def test_config_differs_reads_the_dry_run(tmp_path, out, differs):
    commands = []

    def run_command(args):
        commands.append(args)
        return 0, "", out

    assert backend(tmp_path, run_command=run_command).config_differs("app1") is differs
    assert commands == [
        [
            "docker",
            "compose",
            "--project-directory",
            "/opt/connect",
            "-f",
            "/opt/connect/docker-compose.production.yml",
            "-p",
            "connect",
            "--dry-run",
            "up",
            "--detach",
            "--no-deps",
            "--pull",
            "never",
            "--no-build",
            "app1",
        ]
    ]


def test_compose_failure_is_a_runtime_error(tmp_path):
    b = backend(tmp_path, run_command=lambda args: (1, "", "no such service: app9\n"))
    with pytest.raises(RuntimeError) as info:
        b.recreate("app9")
    assert str(info.value) == (
        "docker compose up --detach --no-deps --force-recreate --pull never --no-build app9 failed (rc=1): no such service: app9"
    )


def test_upstream_file_io(tmp_path):
    b = backend(tmp_path)
    assert b.upstream_dir_exists() is False
    assert b.read_upstream() is None
    b.write_upstream("upstream x {}\n")  # no directory: nothing written
    assert not (tmp_path / "conf.d").exists()
    (tmp_path / "conf.d").mkdir()
    assert b.upstream_dir_exists() is True
    b.write_upstream("upstream x {}\n")
    assert b.read_upstream() == "upstream x {}\n"
    assert (tmp_path / "conf.d" / "upstream.conf").stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in (tmp_path / "conf.d").iterdir()) == ["upstream.conf"]


def test_invalid_service_name_is_a_clean_failure(tmp_path, capsys, monkeypatch):
    (tmp_path / "conf.d").mkdir()
    client = SimpleNamespace(images=FakeImages(), containers=FakeContainers(), ping=lambda: True)
    monkeypatch.setattr(rolling_restart, "docker", engine(client), raising=False)
    monkeypatch.setattr(rolling_restart, "HAS_DOCKER", True)
    result, code = run_main(module_args(tmp_path, services=["App1"]), capsys)
    assert code == 1
    # UpstreamError is a ValueError: main() turns it into fail_json, not a traceback
    assert result["failed"] is True
    assert result["msg"] == "rolling restart stopped: server 'App1' is not a Compose service name (lower case letters, digits, '-' or '_')"
    assert result["changed"] is False
    assert result["instances"] == [{"service": "App1", "action": "unchanged", "image_before": None, "reason": "missing"}]
    assert result["rotation"] is None
    assert result["image_id"] == "sha256:of-connect-app:current"
    assert list((tmp_path / "conf.d").iterdir()) == []
