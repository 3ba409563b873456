"""The four provisioned Grafana dashboards (seed §7.1) and their provisioning: each loads, queries the
provisioned Prometheus datasource, every query parses (promtool 2.42) and reads only metrics that
docs/monitoring.md lists, so a dashboard cannot silently query a metric nothing exports."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import dashboards
import monitoring_render
import pytest
import yaml

FILES = dashboards.ROOT / "roles" / "monitoring" / "files"
EXPECTED = {"system", "application", "database", "business"}


def _promtool() -> str:
    found = shutil.which("promtool") or shutil.which("promtool", path=str(Path(sys.executable).parent))
    if not found:
        pytest.fail(f"promtool not found on PATH nor next to {sys.executable}: run harness/prom-tools.sh .venv")
    return found


@pytest.fixture(scope="module")
def boards():
    return dashboards.dashboards()


def where(dashboard: dict, panel: dict) -> str:
    return f"{dashboard['title']} / {panel.get('title', '?')}"


def test_the_four_dashboards_with_unique_uids(boards):
    assert {path.stem for path, _board in boards} == EXPECTED
    uids = [board["uid"] for _path, board in boards]
    titles = [board["title"] for _path, board in boards]
    assert len(set(uids)) == len(uids) and len(set(titles)) == len(titles)
    for path, board in boards:
        assert board["uid"] == f"connect-{path.stem}"
        assert board["schemaVersion"] >= 36, path.name
        assert board.get("id") is None, f"{path.name}: a provisioned dashboard has no fixed id"


def test_every_panel_queries_the_prometheus_datasource(boards):
    problems = []
    for _path, board in boards:
        ids = [panel["id"] for panel in dashboards.panels(board)]
        if len(set(ids)) != len(ids):
            problems.append(f"{board['title']}: duplicate panel ids")
        for panel in dashboards.panels(board):
            targets = panel.get("targets", [])
            if (panel.get("datasource") or {}).get("uid") != "prometheus":
                problems.append(f"{where(board, panel)}: datasource {panel.get('datasource')}")
            if not any(target.get("expr", "").strip() for target in targets):
                problems.append(f"{where(board, panel)}: no query")
            for target in targets:
                if (target.get("datasource") or {"uid": "prometheus"}).get("uid") != "prometheus":
                    problems.append(f"{where(board, panel)} {target.get('refId')}: datasource {target['datasource']}")
            if len({target.get("refId") for target in targets}) != len(targets):
                problems.append(f"{where(board, panel)}: duplicate refIds")
    assert not problems, "\n".join(problems)


def test_panels_fit_the_grid_without_overlapping(boards):
    problems = []
    for _path, board in boards:
        taken: dict = {}
        for panel in dashboards.panels(board):
            pos = panel["gridPos"]
            if pos["x"] + pos["w"] > 24:
                problems.append(f"{where(board, panel)}: wider than the grid")
            cells = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
            overlapped = {taken[cell] for cell in cells & taken.keys()}
            if overlapped:
                problems.append(f"{where(board, panel)} overlaps {sorted(overlapped)}")
            taken.update(dict.fromkeys(cells, panel.get("title")))
    assert not problems, "\n".join(problems)


def test_promtool_parses_every_query(tmp_path):
    queries = dashboards.dashboard_queries()
    assert len(queries) >= 40
    for dashboard, panel, expr in queries:
        assert not re.search(r"\$\w|\$\{", expr), f"{dashboard} / {panel}: a Grafana variable left in {expr}"
    rules = {
        "groups": [
            {
                "name": "dashboards",
                "rules": [{"record": f"dashboard:check_{n}", "expr": expr} for n, (_dashboard, _panel, expr) in enumerate(queries)],
            }
        ]
    }
    path = tmp_path / "dashboards.rules.yml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    proc = subprocess.run([_promtool(), "check", "rules", str(path)], capture_output=True, text=True, check=False, timeout=60)
    if proc.returncode != 0:
        failed = sorted({int(n) for n in re.findall(r"dashboard:check_(\d+)", proc.stdout + proc.stderr)})
        details = [f"{queries[n][0]} / {queries[n][1]}: {queries[n][2]}" for n in failed]
        pytest.fail("promtool rejects:\n" + "\n".join(details) + "\n\n" + proc.stdout + proc.stderr)
    assert f"SUCCESS: {len(queries)} rules found" in proc.stdout + proc.stderr


def test_every_metric_is_in_the_catalogue():
    known = dashboards.catalogue()
    problems = []
    for dashboard, panel, expr in dashboards.dashboard_queries():
        unknown = dashboards.unknown_metrics(expr, known)
        if unknown:
            problems.append(f"{dashboard} / {panel}: {sorted(unknown)} not in docs/monitoring.md: {expr}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("expr", "unknown"),
    [
        # The catalogue's shorthand (`pg_stat_database_blks_hit`/`_blks_read`), wildcards and histogram series.
        ("rate(pg_stat_database_blks_read[1m]) + rate(pg_stat_database_xact_commit[1m])", set()),
        ("node_memory_MemAvailable_bytes / node_filesystem_size_bytes", set()),
        ("histogram_quantile(0.9, sum by (le) (rate(connect_http_request_duration_seconds_bucket[1m])))", set()),
        ('count(up == 0) + count(probe_success{probe="edge", job="connect_x_y"})', set()),
        # What the check is for: a misspelt or invented metric, anywhere in the expression.
        ("sum(rate(connect_http_request_total[1m]))", {"connect_http_request_total"}),
        ("max by (instance) (redis_memory_peak_bytes) / on (instance) redis_up", {"redis_memory_peak_bytes"}),
        ("rate(pg_stat_database_blks_missed[1m])", {"pg_stat_database_blks_missed"}),
    ],
)
def test_the_catalogue_check_itself(expr, unknown):
    assert dashboards.unknown_metrics(expr) == unknown


def test_provisioning_files(tmp_path):
    """The datasource is the uid the dashboards use; the provider puts them in folder Connect, read-only."""
    out = monitoring_render.render(tmp_path, ["grafana-datasource.yml.j2"], {"ansible_python_interpreter": sys.executable})
    (source,) = yaml.safe_load((out / "grafana-datasource.yml").read_text())["datasources"]
    assert (source["uid"], source["type"], source["url"]) == ("prometheus", "prometheus", "http://prometheus:9090")
    assert source["isDefault"] is True
    (provider,) = yaml.safe_load((FILES / "grafana-dashboards.yml").read_text())["providers"]
    assert provider["type"] == "file" and provider["folder"] == "Connect"
    assert provider["disableDeletion"] is True and provider["allowUiUpdates"] is False
    assert provider["options"]["path"].startswith(("/etc/grafana/", "/var/lib/grafana/"))
