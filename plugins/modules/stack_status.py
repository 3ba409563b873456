#!/usr/bin/python
# Copyright (c) 2026, Connect platform operations
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: stack_status
short_description: The Connect server's morning checklist in one call, with what to do about each finding
version_added: 0.5.0
author: Connect platform operations (@connect-platform)
description:
  - Reads, never changes, on the server - each container's state, health, restarts, uptime, CPU and memory
    against its limits; the release each app instance runs; disk use; the scraper's jobs and logged errors
    since a time; the queue's depth; each backup job's last result and age and WAL archiving; the days left
    on the certificate nginx serves.
  - Returns the rows and the findings (one sentence each, saying what to do); the caller decides to fail.
    The verdicts are in C(plugins/module_utils/_status.py).
  - Secrets are read from files on the server and passed on standard input, never on a command line.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: It only reads, so it runs the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  containers:
    description: The stack's containers, by name.
    type: list
    elements: str
    required: true
  apps:
    description: The app instances among O(containers) (their release is shown, and must be the same).
    type: list
    elements: str
    default: []
  app_repository:
    description: The local image repository whose tags name the releases.
    type: str
    default: connect-app
  postgres:
    description: The PostgreSQL container and the app's database (scraper jobs, WAL archiving).
    type: dict
    suboptions:
      container: {description: Container name., type: str, required: true}
      database: {description: The app's database., type: str, required: true}
      stanza: {description: "The pgBackRest stanza: its newest backup per repository is shown; empty: not.", type: str, default: ""}
  scraper:
    description: The scraper's container and how far back to count its jobs and errors.
    type: dict
    suboptions:
      container: {description: Container name., type: str, required: true}
      since_hours: {description: Hours back., type: float, default: 12}
  queue:
    description: The Redis queue - container, port, admin user and the file holding its password.
    type: dict
    suboptions:
      container: {description: Container name., type: str, required: true}
      port: {description: Port inside the container., type: int, required: true}
      user: {description: Redis ACL user that may run LLEN., type: str, required: true}
      password_file: {description: File on the server with its password., type: path, required: true}
      jobs_key: {description: The list of waiting jobs., type: str, default: "connect:jobs"}
      failed_key: {description: The list of jobs that failed after all retries., type: str, default: "connect:jobs:failed"}
  disks:
    description: Label to path of each file system to report.
    type: dict
    default: {}
  backup_status_dir:
    description: The backup role's status files (one per job); empty leaves backups out.
    type: path
  maintenance_status_dir:
    description: The weekly maintenance jobs' status files (one per job, the operations role's); empty leaves them out.
    type: path
  https_port:
    description: The port nginx serves HTTPS on (on 127.0.0.1); the certificate it serves is read. 0 leaves it out.
    type: int
    default: 0
  alertmanager:
    description: Alertmanager's container and port; its active alerts are listed, and each critical one is a finding. Absent, or a
      container that cannot be read, shows n/a.
    type: dict
    suboptions:
      container: {description: Container name (amtool runs in it)., type: str, required: true}
      port: {description: Port inside the container., type: int, required: true}
  thresholds:
    description: Overrides of the limits in C(_status.DEFAULTS) (disk_percent, memory_percent, restarts, backup_max_age_hours,
      wal_max_lag_seconds, certificate_min_days, queue_max_depth).
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: The morning checklist
  connect.platform.stack_status:
    containers: [connect_nginx, connect_app1, connect_app2, connect_postgres]
    apps: [connect_app1, connect_app2]
    postgres: {container: connect_postgres, database: connect}
    disks: {stack: /opt/connect}
    https_port: 443
  register: status
"""

RETURN = r"""
rows:
  description: What was read, one row each (section, item, value).
  returned: always
  type: list
  elements: dict
table:
  description: The rows as aligned text lines.
  returned: always
  type: list
  elements: str
findings:
  description: What needs attention, one sentence each with the action. Empty when all is well.
  returned: always
  type: list
  elements: str
"""

import calendar
import glob
import json
import os
import re
import ssl
import time
from datetime import datetime

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.connect.platform.plugins.module_utils._status import evaluate, table

_ERRORS = re.compile(r"\b(error|failed|fatal|traceback)\b", re.IGNORECASE)


def _epoch(text: str) -> float | None:
    """Docker's RFC 3339 time (nanoseconds, Z) as epoch seconds."""
    found = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", text or "")
    if not found or found.group(1).startswith("0001"):
        return None
    zone = "+00:00" if found.group(3) == "Z" else found.group(3)
    return datetime.fromisoformat(found.group(1) + (found.group(2) or "")[:7] + zone).timestamp()


def _size(text: str) -> float:
    """'1.5GiB' / '512MiB' / '12kB' as bytes."""
    found = re.match(r"^\s*([\d.]+)\s*([KMGT]?i?B)\s*$", text)
    if not found:
        return 0.0
    power = {"B": 0, "KB": 1, "KIB": 1, "MB": 2, "MIB": 2, "GB": 3, "GIB": 3, "TB": 4, "TIB": 4}[found.group(2).upper()]
    return float(found.group(1)) * 1024**power


class Gatherer:
    def __init__(self, module):
        self.m = module
        self.p = module.params

    def run(self, argv, data=None):
        rc, out, err = self.m.run_command(argv, data=data, binary_data=data is not None)
        return rc, out, err

    def output(self, argv, data=None):
        """Standard output only (an error shows as missing data in the rows)."""
        return self.run(argv, data)[1]

    def containers(self):
        names = self.p["containers"]
        out = self.output(["docker", "inspect"] + names)
        found = {c["Name"].lstrip("/"): c for c in json.loads(out or "[]")}
        result = {}
        running = []
        for name in names:
            c = found.get(name)
            if c is None:
                result[name] = None
                continue
            state = c["State"]
            nano = (c.get("HostConfig") or {}).get("NanoCpus") or 0
            result[name] = {
                "state": state.get("Status", "unknown"),
                "health": (state.get("Health") or {}).get("Status", ""),
                "restarts": c.get("RestartCount", 0),
                "started": _epoch(state.get("StartedAt", "")),
                "cpus": nano / 1e9 if nano else None,
                "memory": (c.get("HostConfig") or {}).get("Memory") or None,
                "image": c.get("Image", ""),
            }
            if state.get("Status") == "running":
                running.append(name)
        if running:
            out = self.output(["docker", "stats", "--no-stream", "--format", "{{json .}}"] + running)
            for line in out.splitlines():
                stat = json.loads(line)
                info = result.get(stat.get("Name"))
                if info is not None:
                    info["cpu_percent"] = float(stat.get("CPUPerc", "0").rstrip("%") or 0)
                    info["mem_bytes"] = _size(stat.get("MemUsage", "0B / 0B").split("/")[0])
        images = sorted({result[app]["image"] for app in self.p["apps"] if result.get(app)})
        if images:
            # The release tags (<repo>:<timestamp>-<sha>), else where the image came from (the first install's reference).
            out = self.output(["docker", "image", "inspect"] + images)
            names = {}
            for image in json.loads(out or "[]"):
                tags = [t for t in image.get("RepoTags") or [] if t.rsplit(":", 1)[-1] not in ("current", "previous")]
                own = [t.rsplit(":", 1)[-1] for t in tags if t.rsplit(":", 1)[0] == self.p["app_repository"]]
                names[image["Id"]] = ", ".join(sorted(own or tags)) or "untagged"
            for app in self.p["apps"]:
                if result.get(app):
                    result[app]["release"] = names.get(result[app]["image"], "untagged")
        for info in result.values():
            if info:
                info.pop("image", None)
        return result

    def psql(self, sql):
        pg = self.p["postgres"]
        rc, out, err = self.run(["docker", "exec", "-u", "postgres", pg["container"], "psql", "-X", "-At", "-d", pg["database"], "-c", sql])
        return out.strip() if rc == 0 else None

    def scraper(self):
        sc = self.p["scraper"]
        hours = sc["since_hours"]
        rc, out, err = self.run(["docker", "logs", "--since", f"{int(hours * 60)}m", sc["container"]])
        errors = sum(1 for line in (out + err).splitlines() if _ERRORS.search(line))
        jobs = None
        if self.p["postgres"]:
            jobs = self.psql(f"SELECT count(*) FROM scrape_results WHERE scraped_at > now() - interval '{int(hours * 60)} minutes'")
        return {"jobs": int(jobs) if jobs and jobs.isdigit() else 0, "errors": errors, "since_hours": hours}

    def queue(self):
        q = self.p["queue"]
        shell = (
            '{ IFS= read -r REDISCLI_AUTH || [ -n "$REDISCLI_AUTH" ]; } && export REDISCLI_AUTH && '
            'redis-cli -p "$1" --user "$2" LLEN "$3" && redis-cli -p "$1" --user "$2" LLEN "$4"'
        )
        with open(q["password_file"], "rb") as handle:
            secret = handle.read()
        rc, out, err = self.run(
            ["docker", "exec", "-i", q["container"], "sh", "-c", shell, "sh", str(q["port"]), q["user"], q["jobs_key"], q["failed_key"]],
            data=secret,
        )
        numbers = [int(n) for n in re.findall(r"^\(?(?:integer\)\s*)?(\d+)\s*$", out, re.MULTILINE)]
        return {"depth": numbers[0], "failed": numbers[1]} if rc == 0 and len(numbers) == 2 else None

    @staticmethod
    def job_results(directory):
        """{job: its newest result} from a directory of status files (backup and maintenance jobs)."""
        found = {}
        for path in glob.glob(os.path.join(directory, "*.json")):
            try:
                with open(path, encoding="utf-8") as handle:
                    record = json.load(handle)
                when = datetime.fromisoformat(record["time"]).timestamp()
            except (OSError, ValueError, KeyError):
                continue
            errors = [s.get("error") for s in record.get("steps", []) if s.get("rc")]
            found[os.path.basename(path)[:-5]] = {
                "result": record.get("result", "unknown"),
                "time": when,
                "error": (errors[0] if errors else record.get("error")),
            }
        return found

    def archiver(self):
        out = self.psql(
            "SELECT coalesce(extract(epoch FROM now() - last_archived_time)::bigint::text, ''), "
            "coalesce(last_failed_time > coalesce(last_archived_time, 'epoch'), false), "
            # How long the oldest completed segment has waited for archive_command (its .ready file): the
            # segment being written is never pending, so an idle server whose last archive is old has none.
            "coalesce((SELECT extract(epoch FROM now() - min(modification))::bigint::text FROM pg_ls_archive_statusdir() "
            "WHERE name LIKE '%.ready'), '') FROM pg_stat_archiver"
        )
        if not out:
            return None
        age, failing, pending = out.split("|")
        return {
            "last_archived_age": int(age) if age else None,
            "failing": failing == "t",
            "pending_age": int(pending) if pending else None,
        }

    def pg_backups(self):
        pg = self.p["postgres"]
        rc, out, err = self.run(
            ["docker", "exec", "-u", "postgres", pg["container"], "pgbackrest", "--stanza=" + pg["stanza"], "--output=json", "info"]
        )
        if rc != 0:
            return None
        stanza = (json.loads(out or "[]") or [{}])[0]
        newest = {str(r["key"]): None for r in stanza.get("repo", [])}
        for backup in stanza.get("backup", []):
            repo = str(backup["database"]["repo-key"])
            newest[repo] = max(filter(None, [newest.get(repo), backup["timestamp"]["stop"]]))
        return newest

    # The labels that say what an alert is about (the rules' identifying labels).
    TARGET_LABELS = ("name", "instance", "probe", "job", "mountpoint")

    def alerts(self):
        """The alerts Alertmanager has active (not silenced or inhibited), by its own amtool."""
        am = self.p["alertmanager"]
        rc, out, err = self.run(
            [
                "docker",
                "exec",
                am["container"],
                "amtool",
                "alert",
                "query",
                f"--alertmanager.url=http://127.0.0.1:{am['port']}",
                "-o",
                "json",
            ]
        )
        if rc != 0:
            return None
        found = []
        for alert in json.loads(out or "[]"):
            labels, notes = alert.get("labels", {}), alert.get("annotations", {})
            if labels.get("severity") == "heartbeat":
                continue  # the dead man's switch always fires: it is news only when it stops
            target = next((labels[k] for k in self.TARGET_LABELS if labels.get(k)), "")
            found.append(
                {
                    "name": labels.get("alertname", "?"),
                    "severity": labels.get("severity", ""),
                    "target": target,
                    "summary": notes.get("summary", ""),
                    "action": notes.get("action", ""),
                }
            )
        return sorted(found, key=lambda a: (a["severity"] != "critical", a["name"], a["target"]))

    def certificate_days(self):
        try:
            pem = ssl.get_server_certificate(("127.0.0.1", self.p["https_port"]), timeout=5)
        except (OSError, ssl.SSLError):
            return None
        rc, out, err = self.run(["openssl", "x509", "-noout", "-enddate"], data=pem)
        found = re.search(r"notAfter=(.+)", out)
        if rc != 0 or not found:
            return None
        end = calendar.timegm(time.strptime(found.group(1).strip().replace(" GMT", ""), "%b %d %H:%M:%S %Y"))
        return (end - time.time()) / 86400


def main():
    module = AnsibleModule(
        argument_spec=dict(
            containers=dict(type="list", elements="str", required=True),
            apps=dict(type="list", elements="str", default=[]),
            app_repository=dict(type="str", default="connect-app"),
            postgres=dict(
                type="dict",
                options=dict(
                    container=dict(type="str", required=True), database=dict(type="str", required=True), stanza=dict(type="str", default="")
                ),
            ),
            scraper=dict(type="dict", options=dict(container=dict(type="str", required=True), since_hours=dict(type="float", default=12))),
            queue=dict(
                type="dict",
                options=dict(
                    container=dict(type="str", required=True),
                    port=dict(type="int", required=True),
                    user=dict(type="str", required=True),
                    password_file=dict(type="path", required=True, no_log=False),
                    jobs_key=dict(type="str", default="connect:jobs", no_log=False),
                    failed_key=dict(type="str", default="connect:jobs:failed", no_log=False),
                ),
            ),
            disks=dict(type="dict", default={}),
            backup_status_dir=dict(type="path"),
            maintenance_status_dir=dict(type="path"),
            https_port=dict(type="int", default=0),
            alertmanager=dict(type="dict", options=dict(container=dict(type="str", required=True), port=dict(type="int", required=True))),
            thresholds=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    g = Gatherer(module)
    p = module.params
    facts = {"now": time.time(), "apps": p["apps"], "containers": g.containers(), "disks": {}}
    for label, path in p["disks"].items():
        if os.path.exists(path):
            stat = os.statvfs(path)
            facts["disks"][label] = {
                "path": path,
                "total": stat.f_blocks * stat.f_frsize,
                "used": (stat.f_blocks - stat.f_bfree) * stat.f_frsize,
            }
    if p["scraper"]:
        facts["scraper"] = g.scraper()
    if p["queue"]:
        facts["queue"] = g.queue()
    if p["backup_status_dir"]:
        facts["backups"] = g.job_results(p["backup_status_dir"])
    if p["maintenance_status_dir"]:
        facts["maintenance"] = g.job_results(p["maintenance_status_dir"])
    if p["postgres"]:
        facts["archiver"] = g.archiver()
        if p["postgres"]["stanza"]:
            facts["pg_backups"] = g.pg_backups()
    if p["https_port"]:
        facts["certificate_days"] = g.certificate_days()
    if p["alertmanager"]:
        facts["alerts"] = g.alerts()
    rows, findings = evaluate(facts, p["thresholds"])
    module.exit_json(changed=False, rows=rows, table=table(rows), findings=findings)


if __name__ == "__main__":
    main()
