# Copyright (c) 2026, Connect platform operations
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0
"""The morning checklist's verdicts (seed section 9.1), from facts gathered on the
server: what each row shows and, for what needs attention, one finding saying
what to do. Pure: the module gathers, this decides (unit-tested with plain dicts).

facts = {
  "now": epoch seconds,
  "containers": {name: {"state", "health", "restarts", "started" (epoch), "cpus" (limit), "memory" (bytes),
                        "cpu_percent" (of one CPU), "mem_bytes", "release"}} (a missing container: None),
  "apps": [names of the app instances],
  "disks": {label: {"path", "used", "total"}},
  "scraper": {"jobs": int, "errors": int, "since_hours": float} or None,
  "queue": {"depth": int, "failed": int} or None,
  "backups": {job: {"result", "time" (epoch), "error"}} (each job's last run),
  "maintenance": the same, for the weekly maintenance jobs,
  "pg_backups": {repository: epoch of its newest backup, or None},
  "archiver": {"failing": bool, "last_archived_age": seconds or None,
               "pending_age": seconds the oldest completed, unarchived segment has waited, or None} or None,
  "certificate_days": float or None,
}
"""

from __future__ import annotations

DEFAULTS = {
    "disk_percent": 80,
    "memory_percent": 90,
    "restarts": 3,
    "backup_max_age_hours": 26,
    "wal_max_lag_seconds": 120,
    "certificate_min_days": 30,
    "queue_max_depth": 1000,
}


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def evaluate(facts: dict, thresholds: dict | None = None) -> tuple[list[dict], list[str]]:
    """(rows, findings): rows are {section, item, value}; a finding is one sentence with the action."""
    limits = {**DEFAULTS, **(thresholds or {})}
    now = facts["now"]
    rows: list[dict] = []
    findings: list[str] = []

    def row(section, item, value):
        rows.append({"section": section, "item": item, "value": value})

    for name, info in facts.get("containers", {}).items():
        if info is None:
            row("containers", name, "missing")
            findings.append(f"{name} does not exist: run site.yml (it creates and starts what the stack needs).")
            continue
        parts = [info["state"] + (f" ({info['health']})" if info.get("health") else "")]
        if info.get("release"):
            parts.append(f"release {info['release']}")
        if info["state"] == "running" and info.get("started"):
            parts.append(f"up {_age(now - info['started'])}")
        parts.append(f"restarts {info.get('restarts', 0)}")
        cpus, memory = info.get("cpus"), info.get("memory")
        if info.get("cpu_percent") is not None:
            parts.append(f"cpu {info['cpu_percent']:.0f} % of {cpus:g}" if cpus else f"cpu {info['cpu_percent']:.0f} %")
        if info.get("mem_bytes") is not None:
            share = 100.0 * info["mem_bytes"] / memory if memory else None
            parts.append(f"mem {_bytes(info['mem_bytes'])}" + (f" / {_bytes(memory)} ({share:.0f} %)" if share is not None else ""))
            if share is not None and share >= limits["memory_percent"]:
                findings.append(
                    f"{name} uses {share:.0f} % of its memory limit: near the limit the kernel kills it; "
                    f"raise its mem_limit in compose_stack_resources (the plan checks the host) or find what grows."
                )
        row("containers", name, ", ".join(parts))
        if info["state"] != "running":
            action = "ansible-playbook site.yml brings the stack back" + (
                " (app instances through the rolling restart)" if name in facts.get("apps", []) else ""
            )
            findings.append(f"{name} is {info['state']}: read `docker logs --tail 50 {name}`, then {action}.")
        elif info.get("health") not in (None, "", "healthy"):
            findings.append(f"{name} is {info['health']}: read `docker inspect --format '{{{{json .State.Health}}}}' {name}` and its logs.")
        if info.get("restarts", 0) >= limits["restarts"]:
            findings.append(f"{name} restarted {info['restarts']} times: it crashes; read `docker logs --since 24h {name}`.")

    releases = {facts["containers"][a].get("release") for a in facts.get("apps", []) if facts.get("containers", {}).get(a)}
    if len(releases) > 1:
        findings.append(
            f"the app instances serve different releases ({', '.join(sorted(r or '?' for r in releases))}): "
            "a release stopped half-way; run deploy.yml again or rollback.yml."
        )

    for label, disk in facts.get("disks", {}).items():
        share = 100.0 * disk["used"] / disk["total"] if disk["total"] else 0.0
        row("disk", label, f"{share:.0f} % of {_bytes(disk['total'])} used ({disk['path']})")
        if share >= limits["disk_percent"]:
            findings.append(
                f"{disk['path']} is {share:.0f} % full: old images (`docker image prune`, never the running or previous release), "
                "logs, or a backup repository growing; look with `du -xsh /opt/connect/*`."
            )

    scraper = facts.get("scraper")
    if scraper is not None:
        row("scraper", f"last {scraper['since_hours']:g} h", f"{scraper['jobs']} jobs done, {scraper['errors']} errors logged")
        if scraper["errors"]:
            findings.append(
                f"the scraper logged {scraper['errors']} errors in the last {scraper['since_hours']:g} h: "
                f"`docker logs --since {scraper['since_hours']:g}h connect_scraper | grep -iE 'error|failed'`."
            )
    queue = facts.get("queue")
    if queue is not None:
        row("queue", "depth", f"{queue['depth']} waiting, {queue['failed']} failed after all retries")
        if queue["depth"] >= limits["queue_max_depth"]:
            findings.append(f"{queue['depth']} jobs wait in the queue: the scraper does not keep up or is stuck; see its row and logs.")
        if queue["failed"]:
            findings.append(
                f"{queue['failed']} scraper jobs failed after all retries (list connect:jobs:failed): look at them, requeue or drop."
            )

    for section, unit, log in (("backups", "connect-backup", "backup.log"), ("maintenance", "connect-maintenance", "maintenance.log")):
        for job, record in sorted((facts.get(section) or {}).items()):
            row(section, job, f"{record['result']} {_age(now - record['time'])} ago")
            if record["result"] != "ok":
                findings.append(
                    f"{section.rstrip('s')} job {job} failed {_age(now - record['time'])} ago ({record.get('error') or 'see its log'}): "
                    f"`journalctl -u {unit}@{job}` and /opt/connect/logs/{log}; run it again with "
                    f"`systemctl start {unit}@{job}.service`."
                )
    pg_backups = facts.get("pg_backups")
    if pg_backups is not None:
        # pgBackRest's own word: the newest backup in each repository.
        for repo in sorted(pg_backups):
            newest = pg_backups[repo]
            row("backups", f"PostgreSQL repo{repo}", f"newest backup {_age(now - newest)} ago" if newest else "no backup")
            if newest is None or now - newest > limits["backup_max_age_hours"] * 3600:
                findings.append(
                    f"no PostgreSQL backup in repository {repo} "
                    + (f"for {_age(now - newest)}" if newest else "at all")
                    + ": `systemctl start connect-backup@pg-diff.service`, then read /opt/connect/logs/backup.log."
                )
    archiver = facts.get("archiver")
    if archiver is not None:
        age = archiver.get("last_archived_age")
        row(
            "backups",
            "WAL archiving",
            ("failing" if archiver["failing"] else "ok") + (f", last segment {_age(age)} ago" if age is not None else ""),
        )
        waiting = archiver.get("pending_age")
        if archiver["failing"] or (waiting is not None and waiting > limits["wal_max_lag_seconds"]):
            findings.append(
                "WAL archiving "
                + ("fails" if archiver["failing"] else f"lags: a completed segment has waited {_age(waiting)}")
                + ": point-in-time recovery loses everything since; read /opt/connect/logs/pgbackrest/ and run `pgbackrest check` "
                "in connect_postgres (is the off-site store reachable?)."
            )
    days = facts.get("certificate_days")
    if days is not None:
        row("tls", "certificate", f"{days:.0f} days left")
        if days < limits["certificate_min_days"]:
            findings.append(
                f"the certificate expires in {days:.0f} days: Let's Encrypt renews at 30 days left, so renewal fails; "
                "run `certbot renew` and read its log (or replace a provided certificate)."
            )
    alerts = facts.get("alerts")
    if alerts is None:
        row("alerts", "firing", "n/a (Alertmanager not readable)")
    else:
        names = [a["name"] + " (" + ", ".join(filter(None, [a.get("severity"), a.get("target")])) + ")" for a in alerts]
        row("alerts", "firing", ", ".join(names) if names else "none")
        for a in alerts:
            if a.get("severity") == "critical":
                target = f" on {a['target']}" if a.get("target") else ""
                findings.append(f"alert {a['name']}{target} is firing: " + (a.get("action") or a.get("summary") or "see Alertmanager."))
    return rows, findings


def table(rows: list[dict]) -> list[str]:
    """Aligned text lines: section, item, value."""
    width_s = max((len(r["section"]) for r in rows), default=0)
    width_i = max((len(r["item"]) for r in rows), default=0)
    return [f"{r['section']:<{width_s}}  {r['item']:<{width_i}}  {r['value']}" for r in rows]
