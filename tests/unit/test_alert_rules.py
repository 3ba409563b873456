"""The monitoring role's Prometheus alert rules (roles/monitoring/templates/alerts.rules.yml.j2).

The template is rendered through Ansible with the role's defaults (monitoring_render, once per
session), checked by `promtool check rules`, and tested by `promtool test rules` with every file in
tests/unit/promtool/ (copied next to the rendered file, which they name `alerts.rules.yml`). promtool
is the harness's (harness/prom-tools.sh puts Prometheus 2.42's next to the virtualenv's Python).

Besides promtool's cases: every alert is complete (severity, `for`, summary, action), a warning and
a critical of one condition differ only by severity and threshold (Alertmanager's inhibition relies
on it), every alert and severity is exercised by a promtool file, and the thresholds follow the
inventory."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from monitoring_render import ROOT, render

TEMPLATE = "alerts.rules.yml.j2"
RULES = "alerts.rules.yml"
PROMTOOL_DIR = Path(__file__).resolve().parent / "promtool"
PROMTOOL_TESTS = sorted(PROMTOOL_DIR.glob("*.yml"))
DEFAULTS = yaml.safe_load((ROOT / "roles" / "monitoring" / "defaults" / "main.yml").read_text(encoding="utf-8"))
# Ansible's interpreter discovery on localhost may find a broken python3.x shim; the templates do not care.
RENDER_VARS = {"ansible_python_interpreter": sys.executable}

# Other files (Alertmanager's routes and inhibitions, the dashboards, the runbook) use these names.
ALERT_NAMES = {
    "HostCpuHigh",
    "ContainerCpuHigh",
    "HostMemoryHigh",
    "ContainerMemoryHigh",
    "DiskUsageHigh",
    "DiskFullIn24h",
    "ApiLatencyHigh",
    "HttpErrorRateHigh",
    "PostgresConnectionsHigh",
    "PgbouncerClientsHigh",
    "PgbouncerClientsWaiting",
    "ScrapingFailureRateHigh",
    "ContainerDown",
    "ContainerUnhealthy",
    "ServiceUnhealthy",
    "TargetDown",
    "AppInstanceDown",
    "EdgeDown",
    "AppInstanceOutOfRotation",
    "WalArchivingFailing",
    "WalArchiveBehind",
    "BackupTooOld",
    "BackupMissing",
    "BackupJobFailed",
    "CertificateExpiringSoon",
    "RedisQueueMemoryHigh",
}
DURATION = re.compile(r"^(?:[0-9]+(?:ms|[smhdwy]))+$")
# A rule's threshold: the comparison that ends its expression.
THRESHOLD = re.compile(r"\s*(?:[<>]=?|==)\s*[0-9.]+\s*$")


def find_promtool():
    beside = Path(sys.executable).parent / "promtool"
    if beside.is_file():
        return str(beside)
    return shutil.which("promtool")


def run_promtool(promtool, *args, cwd):
    proc = subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def alert_rules(path: Path):
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"] if "alert" in rule]


def seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    return sum(int(n) * units[u] for n, u in re.findall(r"([0-9]+)(ms|[smhdwy])", duration))


@pytest.fixture(scope="session")
def promtool():
    path = find_promtool()
    if not path:
        pytest.skip(f"promtool is neither next to {sys.executable} nor on PATH (harness/prom-tools.sh .venv)")
    return path


@pytest.fixture(scope="session")
def rules_dir(tmp_path_factory):
    """The template rendered with the role's defaults, the promtool files next to it."""
    out = render(tmp_path_factory.mktemp("alerts"), [TEMPLATE], RENDER_VARS)
    for test_file in PROMTOOL_TESTS:
        shutil.copy(test_file, out / test_file.name)
    return out


# The dead man's switch: always firing, its own severity, routed only to the heartbeat receiver.
HEARTBEAT = "Watchdog"


@pytest.fixture(scope="session")
def rules(rules_dir):
    """The alerts someone acts on (the heartbeat has its own test)."""
    return [rule for rule in alert_rules(rules_dir / RULES) if rule["alert"] != HEARTBEAT]


def test_promtool_checks_the_rules(promtool, rules_dir, rules):
    code, output = run_promtool(promtool, "check", "rules", RULES, cwd=rules_dir)
    assert code == 0, output
    assert f"SUCCESS: {len(rules) + 1} rules found" in output, output  # and the heartbeat


def test_the_heartbeat_always_fires_alone_in_its_group_with_its_own_severity(rules_dir):
    document = yaml.safe_load((rules_dir / RULES).read_text(encoding="utf-8"))
    groups = [group for group in document["groups"] if any(rule.get("alert") == HEARTBEAT for rule in group["rules"])]
    assert len(groups) == 1 and len(groups[0]["rules"]) == 1, groups
    (rule,) = groups[0]["rules"]
    assert rule["expr"].strip() == "vector(1)" and rule["labels"] == {"severity": "heartbeat"}, rule


@pytest.mark.parametrize("test_file", PROMTOOL_TESTS, ids=[path.stem for path in PROMTOOL_TESTS])
def test_promtool_unit_tests(promtool, rules_dir, test_file):
    code, output = run_promtool(promtool, "test", "rules", test_file.name, cwd=rules_dir)
    assert code == 0, f"promtool test rules {test_file.name}:\n{output}"


def test_the_alert_names_are_the_contract(rules):
    assert {rule["alert"] for rule in rules} == ALERT_NAMES


def test_every_alert_is_complete(rules_dir, rules):
    text = (rules_dir / RULES).read_text(encoding="utf-8")
    assert "{%" not in text and "{#" not in text, "Jinja left in the rendered rules"
    for rule in rules:
        name = rule["alert"]
        assert rule.get("labels", {}).get("severity") in {"warning", "critical"}, name
        assert DURATION.match(str(rule.get("for", ""))), f"{name}: for {rule.get('for')!r}"
        assert seconds(rule["for"]) > 0, f"{name}: a zero `for` fires on one odd scrape"
        annotations = rule.get("annotations", {})
        for key in ("summary", "action"):
            assert isinstance(annotations.get(key), str) and annotations[key].strip(), f"{name}: no {key}"


def test_warning_and_critical_differ_only_by_severity_and_threshold(rules):
    """Alertmanager inhibits a warning while the critical of the same alertname fires, equal on the
    labels the expression keeps: both variants must keep the same ones (the same expression)."""
    by_name = {}
    for rule in rules:
        by_name.setdefault(rule["alert"], []).append(rule)
    for name, variants in by_name.items():
        severities = [rule["labels"]["severity"] for rule in variants]
        assert sorted(severities) in (["critical"], ["warning"], ["critical", "warning"]), f"{name}: {severities}"
        if len(variants) == 1:
            continue
        warning, critical = sorted(variants, key=lambda rule: rule["labels"]["severity"] == "critical")
        assert THRESHOLD.sub("", warning["expr"]) == THRESHOLD.sub("", critical["expr"]), name
        assert warning["expr"] != critical["expr"], f"{name}: the same threshold twice"
        assert warning["for"] == critical["for"], name
        assert warning["annotations"]["action"] == critical["annotations"]["action"], name
        assert {**warning["labels"], "severity": None} == {**critical["labels"], "severity": None}, name


def test_every_alert_has_promtool_cases(rules):
    """Every alert and each of its severities fires in some promtool case, and every alert has a
    case where it must stay quiet: a new alert without tests fails here."""
    fired, quiet = set(), set()
    for test_file in PROMTOOL_TESTS:
        document = yaml.safe_load(test_file.read_text(encoding="utf-8"))
        assert document["rule_files"] == [RULES], test_file.name
        for group in document["tests"]:
            for case in group.get("alert_rule_test", []):
                name = case["alertname"]
                assert name in ALERT_NAMES | {HEARTBEAT}, f"{test_file.name}: unknown alert {name}"
                expected = case.get("exp_alerts") or []
                if not expected:
                    quiet.add(name)
                fired.update((name, alert["exp_labels"]["severity"]) for alert in expected)
    wanted = {(rule["alert"], rule["labels"]["severity"]) for rule in rules}
    assert sorted(wanted - fired) == [], "alerts (and severities) no promtool case fires"
    assert sorted(ALERT_NAMES - quiet) == [], "alerts without a promtool case where they stay quiet"
    assert (HEARTBEAT, "heartbeat") in fired, "the heartbeat has no promtool case"


def test_thresholds_follow_the_inventory(promtool, rules_dir, tmp_path):
    """CPU warning at 50 % instead of 70 %, base backups may be 12 h old: a host 60 % busy fires
    only with the override; the backup rules carry the 12 h."""
    thresholds = copy.deepcopy(DEFAULTS["monitoring_thresholds"])
    thresholds["cpu_percent"]["warning"] = 50
    overrides = dict(RENDER_VARS, monitoring_thresholds=thresholds, monitoring_backup_max_age_hours=12)
    overridden = render(tmp_path / "overridden", [TEMPLATE], overrides)

    by_name = {(rule["alert"], rule["labels"]["severity"]): rule for rule in alert_rules(overridden / RULES)}
    assert by_name["HostCpuHigh", "warning"]["expr"].rstrip().endswith("> 50.0")
    assert by_name["HostCpuHigh", "critical"]["expr"].rstrip().endswith("> 85.0")
    assert by_name["BackupTooOld", "critical"]["expr"].rstrip().endswith("> 12.0")
    assert by_name["BackupMissing", "critical"]["for"] == "12h"

    def cpu_test(rules_file: Path, exp_alerts):
        return {
            "rule_files": [str(rules_file)],
            "evaluation_interval": "1m",
            "tests": [
                {
                    "name": "a host 60 % busy (24 idle seconds a minute)",
                    "interval": "1m",
                    "input_series": [{"series": 'node_cpu_seconds_total{cpu="0", mode="idle", instance="host-a"}', "values": "0+24x30"}],
                    "alert_rule_test": [
                        {"eval_time": "10m", "alertname": "HostCpuHigh"},
                        {"eval_time": "15m", "alertname": "HostCpuHigh", "exp_alerts": exp_alerts},
                    ],
                }
            ],
        }

    fires = [
        {
            "exp_labels": {"severity": "warning", "instance": "host-a"},
            "exp_annotations": {
                "summary": "Host host-a CPU 60.0% busy (over 50%)",
                "action": "Investigate load, consider App Instance 3 (compose_stack_peak_season)",
            },
        }
    ]
    for label, rules_file, exp_alerts in (("overridden", overridden / RULES, fires), ("defaults", rules_dir / RULES, [])):
        test_file = tmp_path / f"cpu-{label}.test.yml"
        test_file.write_text(yaml.safe_dump(cpu_test(rules_file, exp_alerts), sort_keys=False), encoding="utf-8")
        code, output = run_promtool(promtool, "test", "rules", str(test_file), cwd=tmp_path)
        assert code == 0, f"{rules_file}:\n{output}"
