"""The provisioned Grafana dashboards (roles/monitoring/files/dashboards/*.json) and their queries, for the
unit test (promtool parses each query; each metric is one docs/monitoring.md lists) and for a live test
(each query returns data from the running Prometheus).

    from dashboards import dashboard_queries
    for dashboard, panel, expr in dashboard_queries(): ...
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD_DIR = ROOT / "roles" / "monitoring" / "files" / "dashboards"
CATALOGUE = ROOT / "docs" / "monitoring.md"

# Grafana's own variables, replaced by what Grafana puts there for a 15 s scrape interval (the
# datasource's timeInterval): Prometheus knows none of them.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1d"}

# Metric names the catalogue must list: the exporters' prefixes, and Prometheus's own `up`.
METRIC_PREFIXES = ("connect_", "node_", "pg_", "pgbouncer_", "redis_", "probe_")
BUILTIN_METRICS = {"up"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def dashboards() -> list[tuple[Path, dict]]:
    """(file, parsed JSON) of every dashboard, by file name."""
    return [(path, json.loads(path.read_text(encoding="utf-8"))) for path in sorted(DASHBOARD_DIR.glob("*.json"))]


def panels(dashboard: dict) -> Iterator[dict]:
    """Every panel that shows data (rows' nested panels included, rows themselves not)."""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def expand(expr: str, variables: dict | None = None) -> str:
    """The query as Prometheus receives it: Grafana's variables replaced (longest names first)."""
    values = dict(GRAFANA_VARIABLES, **(variables or {}))
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace(name, values[name])
    return expr


def dashboard_queries(variables: dict | None = None) -> list[tuple[str, str, str]]:
    """(dashboard title, panel title, PromQL) of every target of every panel, Grafana's variables
    expanded (`variables` overrides GRAFANA_VARIABLES, e.g. a wider rate window for a live test)."""
    return [
        (dashboard["title"], panel.get("title", ""), expand(target["expr"], variables))
        for _path, dashboard in dashboards()
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def catalogue() -> tuple[set, tuple]:
    """(exact names, name prefixes) of the metrics docs/monitoring.md lists from its metric catalogue on.

    `pg_stat_database_blks_hit`/`_blks_read` is shorthand: a name starting with `_` replaces as many
    trailing words of the previous full name as it has (pg_stat_database_blks_read); `node_memory_*`
    is a prefix; a histogram's row adds its _bucket, _sum and _count series."""
    text = CATALOGUE.read_text(encoding="utf-8")
    text = text[text.index("## Metric catalogue") :]
    names: set = set()
    prefixes: list = []
    previous = ""
    for line in text.splitlines():
        on_line = []
        for token in re.findall(r"`([a-zA-Z_:][a-zA-Z0-9_:]*\*?)`", line):
            if token.endswith("*"):
                prefixes.append(token[:-1])
            elif token.startswith("_") and previous:
                words = token[1:].split("_")
                on_line.append("_".join(previous.split("_")[: -len(words)] + words))
            elif token.startswith(METRIC_PREFIXES):
                previous = token
                on_line.append(token)
        names.update(on_line)
        if "histogram" in line:
            names.update(name + suffix for name in on_line for suffix in HISTOGRAM_SUFFIXES)
    return names, tuple(prefixes)


def metric_names(expr: str) -> set:
    """The metric names a PromQL expression reads (tokens with an exporter's prefix, and `up`)."""
    stripped = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)  # string literals
    stripped = re.sub(r"\{[^}]*\}", "", stripped)  # label matchers
    stripped = re.sub(r"\[[^\]]*\]", "", stripped)  # ranges and subqueries
    stripped = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", stripped)  # label lists
    tokens = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", stripped))
    return {token for token in tokens if token in BUILTIN_METRICS or token.startswith(METRIC_PREFIXES)}


def unknown_metrics(expr: str, known: tuple[set, tuple] | None = None) -> set:
    """The metric names in `expr` that the catalogue does not list."""
    names, prefixes = known or catalogue()
    return {name for name in metric_names(expr) if name not in names | BUILTIN_METRICS and not name.startswith(prefixes)}
