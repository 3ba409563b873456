"""Alertmanager's configuration as the monitoring role renders it, checked by amtool (0.25, the oldest
Alertmanager the role supports): the file loads, critical alerts reach every enabled channel and
warnings one, a critical alert inhibits its warning twin, and secrets with quotes stay intact.

Three renders (both channels, email only, Slack only), each shared by the tests of its module-scoped fixture."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import monitoring_render
import pytest
import yaml

# Fake secrets: nothing is ever sent (the tests only load and route).
TRICKY_PASSWORD = "p\"w'd: # [x] {y} \\ end"
COMMON = {
    "ansible_python_interpreter": sys.executable,
    "monitoring_alertmanager_slack_webhook_url": "http://sink.invalid/slack",
    "monitoring_alertmanager_slack_channel": "#alerts",
    "monitoring_alertmanager_email_to": "ops@sink.invalid",
    "monitoring_alertmanager_email_from": "alertmanager@sink.invalid",
    "monitoring_alertmanager_smtp_smarthost": "sink.invalid:25",
    "monitoring_heartbeat_url": "https://heartbeat.invalid/ping/0f1e2d3c",
}
RENDERS = {
    "both": dict(
        COMMON,
        monitoring_alertmanager_receivers=["slack", "email"],
        monitoring_alertmanager_smtp_username="alerts@sink.invalid",
        monitoring_alertmanager_smtp_password=TRICKY_PASSWORD,
        monitoring_alertmanager_group_wait="11s",
        monitoring_alertmanager_group_interval="7m",
        monitoring_alertmanager_repeat_interval="3h",
    ),
    "email": dict(COMMON, monitoring_alertmanager_receivers=["email"]),
    "slack": dict(COMMON, monitoring_alertmanager_receivers=["slack"], monitoring_heartbeat_interval="20s"),
    "no-heartbeat": dict(COMMON, monitoring_alertmanager_receivers=["slack"], monitoring_heartbeat_enabled=False),
}
IDENTIFYING = ["instance", "name", "job", "mountpoint", "probe"]


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if not found:
        pytest.fail(f"{name} not found on PATH nor next to {sys.executable}: run harness/prom-tools.sh .venv")
    return found


def amtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([_tool("amtool"), *args], capture_output=True, text=True, check=False, timeout=60)


@pytest.fixture(scope="module", params=sorted(RENDERS))
def rendered(request, tmp_path_factory):
    """(variant, path of alertmanager.yml, its parsed content) for each receiver set."""
    out = monitoring_render.render(tmp_path_factory.mktemp(request.param), ["alertmanager.yml.j2"], RENDERS[request.param])
    path = out / "alertmanager.yml"
    return request.param, path, yaml.safe_load(path.read_text())


def receiver(config: dict, name: str) -> dict:
    (found,) = [r for r in config["receivers"] if r["name"] == name]
    return found


def channels(config: dict, name: str) -> set:
    return {key for key, value in receiver(config, name).items() if key.endswith("_configs") and value}


def route(path: Path, expected: str, *labels: str) -> None:
    proc = amtool("config", "routes", "test", f"--config.file={path}", f"--verify.receivers={expected}", *labels)
    assert proc.returncode == 0, f"{' '.join(labels)} should reach {expected}: {proc.stdout}{proc.stderr}"
    assert proc.stdout.strip() == expected


def test_amtool_accepts_the_file(rendered):
    _variant, path, _config = rendered
    proc = amtool("check-config", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


@pytest.mark.parametrize(
    "labels",
    [
        ["alertname=HostCpuHigh"],
        ["alertname=ContainerDown", "name=connect-app1-1", "service=app1"],
        ["alertname=DiskUsageHigh", "mountpoint=/"],
        ["alertname=BackupJobFailed", "job=pg-full"],
    ],
    ids=lambda labels: labels[0].split("=")[1],
)
def test_severity_chooses_the_receiver(rendered, labels):
    _variant, path, _config = rendered
    route(path, "critical", "severity=critical", *labels)
    route(path, "warning", "severity=warning", *labels)


def test_an_alert_without_severity_still_reaches_someone(rendered):
    _variant, path, _config = rendered
    route(path, "warning", "alertname=SomethingNew")


def test_the_watchdog_goes_to_the_heartbeat_receiver_only_at_its_interval(rendered):
    variant, path, config = rendered
    route(path, "heartbeat", "alertname=Watchdog", "severity=heartbeat")
    (heartbeat,) = [r for r in config["route"]["routes"] if r["receiver"] == "heartbeat"]
    interval, repeat = ("20s", "10s") if variant == "slack" else ("1m", "30s")
    assert (heartbeat["group_wait"], heartbeat["group_interval"], heartbeat["repeat_interval"]) == ("0s", interval, repeat)
    assert heartbeat.get("continue") is not True, "the heartbeat must not reach Slack or e-mail too"
    webhooks = receiver(config, "heartbeat").get("webhook_configs", [])
    if variant == "no-heartbeat":
        assert channels(config, "heartbeat") == set(), "disabled: the Watchdog goes nowhere"
    else:
        assert webhooks == [{"url": "https://heartbeat.invalid/ping/0f1e2d3c", "send_resolved": False}]


def test_channels_per_receiver(rendered):
    variant, _path, config = rendered
    expected = {
        "both": ({"slack_configs", "email_configs"}, {"slack_configs"}),
        "email": ({"email_configs"}, {"email_configs"}),
        "slack": ({"slack_configs"}, {"slack_configs"}),
        "no-heartbeat": ({"slack_configs"}, {"slack_configs"}),
    }[variant]
    assert (channels(config, "critical"), channels(config, "warning")) == expected
    assert config["route"]["receiver"] == "warning"
    for name in ("critical", "warning"):
        for slack in receiver(config, name).get("slack_configs", []):
            assert slack["api_url"] == "http://sink.invalid/slack"
            assert slack["channel"] == "#alerts"
            assert slack["send_resolved"] is True
        for email in receiver(config, name).get("email_configs", []):
            assert email["to"] == "ops@sink.invalid"
            assert email["send_resolved"] is True


def test_smtp_settings(rendered):
    variant, _path, config = rendered
    smtp = {key: value for key, value in config["global"].items() if key.startswith("smtp_")}
    if variant in ("slack", "no-heartbeat"):
        assert smtp == {}
        return
    assert smtp["smtp_smarthost"] == "sink.invalid:25"
    assert smtp["smtp_from"] == "alertmanager@sink.invalid"
    assert smtp["smtp_require_tls"] is True
    if variant == "both":
        # The password with quotes, a colon, a hash, brackets and a backslash comes back unchanged.
        assert smtp["smtp_auth_username"] == "alerts@sink.invalid"
        assert smtp["smtp_auth_password"] == TRICKY_PASSWORD
    else:
        # No username: no authentication at all (Alertmanager would try PLAIN with an empty one).
        assert not {"smtp_auth_username", "smtp_auth_password"} & smtp.keys()


def test_grouping_and_timing(rendered):
    variant, _path, config = rendered
    root = config["route"]
    assert root["group_by"][:2] == ["alertname", "severity"]
    assert set(IDENTIFYING) <= set(root["group_by"])
    expected = ("11s", "7m", "3h") if variant == "both" else ("30s", "5m", "4h")
    assert (root["group_wait"], root["group_interval"], root["repeat_interval"]) == expected


def test_critical_inhibits_its_warning_twin(rendered):
    _variant, _path, config = rendered
    (rule,) = config["inhibit_rules"]
    assert rule["source_matchers"] == ['severity="critical"']
    assert rule["target_matchers"] == ['severity="warning"']
    # alertname: a critical HostCpuHigh must not silence a warning HostMemoryHigh; the identifying
    # labels: a critical DiskUsageHigh on / must not silence the warning one on another mount.
    assert rule["equal"][0] == "alertname"
    assert set(rule["equal"]) == {"alertname", *IDENTIFYING}


@pytest.mark.parametrize("rendered", ["both", "slack"], indirect=True)
def test_slack_message_shows_summary_and_action(rendered, tmp_path):
    _variant, _path, config = rendered
    slack = receiver(config, "critical")["slack_configs"][0]
    alert = {
        "status": "firing",
        "labels": {"alertname": "ContainerDown", "severity": "critical", "name": "connect-app1-1", "service": "app1"},
        "annotations": {"summary": "Container connect-app1-1 is not running", "action": "docker compose up -d app1"},
        "startsAt": "2025-01-01T00:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "",
        "fingerprint": "1",
    }
    data = {
        "receiver": "critical",
        "status": "firing",
        "alerts": [alert],
        "groupLabels": {"alertname": "ContainerDown"},
        "commonLabels": alert["labels"],
        "commonAnnotations": alert["annotations"],
        "externalURL": "http://alertmanager:9093",
    }
    (tmp_path / "data.json").write_text(json.dumps(data))
    (tmp_path / "none.tmpl").write_text("")
    shown = {}
    for field in ("title", "text", "color"):
        proc = amtool(
            "template",
            "render",
            f"--template.glob={tmp_path / 'none.tmpl'}",
            f"--template.text={slack[field]}",
            f"--template.data={tmp_path / 'data.json'}",
        )
        assert proc.returncode == 0, f"{field}: {proc.stderr}"
        shown[field] = proc.stdout
    assert shown["title"].strip() == "[FIRING:1] ContainerDown (critical)"
    assert "Container connect-app1-1 is not running" in shown["text"]
    assert "docker compose up -d app1" in shown["text"]
    assert "`name=connect-app1-1`" in shown["text"]
    assert shown["color"].strip() == "danger"
