"""connect-exporter: the Connect stack's own Prometheus exporter (docs/monitoring.md, job "connect").

    connect-exporter.py [--config FILE] [--port PORT] [--address ADDRESS]

Serves GET /metrics (Prometheus text format 0.0.4) and GET /-/healthy on
PORT (--port, else $CONNECT_EXPORTER_PORT, else 9200). Python standard
library only: the official Python image runs it as it is.

One JSON file configures it (--config, else $CONNECT_EXPORTER_CONFIG, else
/etc/connect-exporter/config.json); every key but "containers" is a path as
the exporter's container sees it, and a collector whose key is absent or
empty is off:

  containers              [{"name": "connect_app1", "service": "app1"}, ...] the expected containers
  docker_root             Docker's containers directory (<id>/config.v2.json, <id>/hostconfig.json)
  cgroup_root             the host's cgroup v2 hierarchy
  access_log              nginx's access log, in nginx's "connect" log_format, as a file
  access_log_container    or: the container whose stdout is that log (Docker's json-file log under docker_root)
  access_log_replay_max_bytes  (optional, 50 MiB) a log larger than this at start is read from its end
  backup_status_dir       <job>.json of each backup job (newest run)
  backup_log              (optional) the backup jobs' JSON-lines log: the newest success of a job whose newest run failed
  maintenance_status_dir  <job>.json of each weekly maintenance job (newest run)
  maintenance_log         (optional) the same for the maintenance jobs
  upstream_file           nginx's upstream of the app instances (module_utils/_upstream.py writes it)
  upstream_name           (optional) only that upstream block of the file
  app_instances           ["app1", "app2"]: connect_app_in_rotation for each
  proc_root               the host's /proc (its network namespace: <proc_root>/1/net/dev)

A collector that raises is counted in connect_exporter_scrape_errors_total
and leaves its series out of that scrape; the others are unaffected.
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import os
import re
import signal
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_CONFIG = "/etc/connect-exporter/config.json"
DEFAULT_PORT = 9200
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
# A log larger than this when the exporter starts is read from its end (history is not replayed).
REPLAY_MAX_BYTES = 50 * 1024 * 1024
READ_CHUNK = 1024 * 1024
# At most this much of a log is read per scrape; the rest waits for the next scrape.
MAX_READ_PER_UPDATE = 256 * 1024 * 1024
# A "line" longer than this is no nginx log line: it is dropped (and counted as skipped).
MAX_LINE = 64 * 1024
# A container whose cgroup a full search did not find is searched again after this long.
CGROUP_SEARCH_RETRY_SECONDS = 60
CGROUP_SEARCH_MAX_DEPTH = 8


def log(message):
    sys.stderr.write(f"{datetime.now(timezone.utc).isoformat(timespec='seconds')} connect-exporter: {message}\n")
    sys.stderr.flush()


# --- exposition format -----------------------------------------------------------------------------


class Family:
    """One metric: name, type, help and its samples (sample name, labels, value)."""

    def __init__(self, name, mtype, help_text):
        self.name = name
        self.type = mtype
        self.help = help_text
        self.samples = []

    def add(self, value, labels=None, suffix=""):
        self.samples.append((self.name + suffix, dict(labels or {}), value))
        return self


def escape_label_value(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def escape_help(text):
    return str(text).replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def render(families):
    """The text exposition (format 0.0.4) of the families, HELP and TYPE before each."""
    out = []
    for family in families:
        out.append(f"# HELP {family.name} {escape_help(family.help)}")
        out.append(f"# TYPE {family.name} {family.type}")
        for name, labels, value in family.samples:
            if labels:
                text = ",".join(f'{key}="{escape_label_value(val)}"' for key, val in labels.items())
                out.append(f"{name}{{{text}}} {format_value(value)}")
            else:
                out.append(f"{name} {format_value(value)}")
    return "\n".join(out) + "\n"


# --- containers: Docker's state files and cgroup v2 ------------------------------------------------------


class JsonCache:
    """Parsed JSON files, read again only when their inode, mtime or size changed."""

    def __init__(self):
        self._entries = {}

    def load(self, path):
        st = os.stat(path)
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        entry = self._entries.get(path)
        if entry is not None and entry[0] == stamp:
            return entry[1]
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except ValueError:
            if entry is not None:  # caught mid-write: the previous content still holds
                return entry[1]
            raise
        self._entries[path] = (stamp, data)
        return data

    def keep_only(self, paths):
        for path in set(self._entries) - set(paths):
            del self._entries[path]


class ContainerState:
    """What container_metrics keeps between scrapes: parsed state files and found cgroup directories."""

    def __init__(self):
        self.json = JsonCache()
        self.cgroups = {}  # container id -> cgroup directory, or the monotonic time a search found none


def container_index(docker_root, cache=None):
    """{name without the leading "/": {"id", "dir", "running", "health", "started"}} of the containers
    in Docker's containers directory. Two containers of one name (a leftover): the running one wins."""
    cache = cache if cache is not None else JsonCache()
    found, seen = {}, []
    with os.scandir(docker_root) as entries:
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False):
                continue
            path = os.path.join(entry.path, "config.v2.json")
            try:
                config = cache.load(path)
            except (OSError, ValueError):
                continue
            seen.append(path)
            if not isinstance(config, dict):
                continue
            name = str(config.get("Name") or "").lstrip("/")
            if not name:
                continue
            state = config.get("State") if isinstance(config.get("State"), dict) else {}
            health = state.get("Health") if isinstance(state.get("Health"), dict) else {}
            info = {
                "id": str(config.get("ID") or entry.name),
                "dir": entry.path,
                "running": state.get("Running") is True,
                "health": str(health.get("Status") or ""),
                "started": str(state.get("StartedAt") or ""),
                "log": os.path.join(
                    entry.path, os.path.basename(str(config.get("LogPath") or "")) or f"{config.get('ID') or entry.name}-json.log"
                ),
            }
            other = found.get(name)
            if other is None or (info["running"], info["started"]) > (other["running"], other["started"]):
                found[name] = info
    cache.keep_only(seen)
    return found


def container_log_path(docker_root, name, cache=None):
    """Where Docker's json-file log of container `name` is ("" when there is no such container)."""
    info = container_index(docker_root, cache).get(name)
    return info["log"] if info else ""


def container_healthy(info):
    """The container runs and Docker's state file does not say "unhealthy". Docker writes the health
    status to disk only now and then (a running container's file often still says "starting"), so this is
    "not known unhealthy"; the services' own health comes from their exporters (pg_up, redis_up...) and probes."""
    if info is None or not info["running"]:
        return False
    return info["health"] != "unhealthy"


def _search_cgroup(root, container_id):
    base = root.rstrip(os.sep).count(os.sep)
    for dirpath, dirnames, _filenames in os.walk(root):
        dirnames.sort()
        for name in dirnames:
            if container_id in name:
                return os.path.join(dirpath, name)
        if dirpath.rstrip(os.sep).count(os.sep) - base >= CGROUP_SEARCH_MAX_DEPTH:
            dirnames[:] = []
    return None


def find_cgroup(cgroup_root, container_id, cache=None, now=None):
    """The container's cgroup v2 directory: system.slice/docker-<id>.scope (systemd driver),
    docker/<id> (cgroupfs driver), else the first directory whose name holds the id. None if none."""
    cache = cache if cache is not None else {}
    if not container_id or len(container_id) < 12:
        return None
    known = cache.get(container_id)
    if isinstance(known, str) and os.path.isdir(known):
        return known
    for path in (
        os.path.join(cgroup_root, "system.slice", f"docker-{container_id}.scope"),
        os.path.join(cgroup_root, "docker", container_id),
    ):
        if os.path.isdir(path):
            cache[container_id] = path
            return path
    now = time.monotonic() if now is None else now
    if isinstance(known, float) and now - known < CGROUP_SEARCH_RETRY_SECONDS:
        return None
    path = _search_cgroup(cgroup_root, container_id)
    cache[container_id] = path if path else now
    return path


def _read(path):
    with open(path, encoding="ascii") as handle:
        return handle.read()


def _read_optional(path):
    try:
        return _read(path)
    except FileNotFoundError:
        return None


def _keyed(text, key):
    for line in (text or "").splitlines():
        words = line.split()
        if len(words) == 2 and words[0] == key:
            return int(words[1])
    return None


def read_cgroup_v1(cgroup_root, container_id, cache=None, now=None):
    """The same figures from cgroup v1 hierarchies (cpuacct, memory), for hosts still on v1."""
    cache = cache if cache is not None else {}
    figures = {"cpu_seconds": None, "working_set_bytes": None, "cpu_max_cores": None, "memory_max_bytes": None}
    cpu = None
    for name in ("cpuacct", "cpu,cpuacct"):
        if os.path.isdir(os.path.join(cgroup_root, name)):
            cpu = find_cgroup(os.path.join(cgroup_root, name), container_id, cache.setdefault("cpu", {}), now)
            break
    if cpu:
        usage = _read_optional(os.path.join(cpu, "cpuacct.usage"))
        if usage is not None and usage.strip().isdigit():
            figures["cpu_seconds"] = int(usage.strip()) / 1e9
    memory = None
    if os.path.isdir(os.path.join(cgroup_root, "memory")):
        memory = find_cgroup(os.path.join(cgroup_root, "memory"), container_id, cache.setdefault("memory", {}), now)
    if memory:
        current = _read_optional(os.path.join(memory, "memory.usage_in_bytes"))
        if current is not None and current.strip().isdigit():
            inactive = _keyed(_read_optional(os.path.join(memory, "memory.stat")), "total_inactive_file") or 0
            figures["working_set_bytes"] = max(0, int(current.strip()) - inactive)
    return figures


def read_cgroup(path):
    """{"cpu_seconds", "working_set_bytes", "cpu_max_cores", "memory_max_bytes"} of a cgroup v2
    directory; a value whose file is absent (controller not enabled) is None."""
    usage = _keyed(_read_optional(os.path.join(path, "cpu.stat")), "usage_usec")
    current = _read_optional(os.path.join(path, "memory.current"))
    working_set = None
    if current is not None:
        inactive = _keyed(_read_optional(os.path.join(path, "memory.stat")), "inactive_file") or 0
        working_set = max(0, int(current.strip()) - inactive)
    cpu_max = None
    words = (_read_optional(os.path.join(path, "cpu.max")) or "").split()
    if len(words) == 2 and words[0] != "max" and int(words[1]) > 0:
        cpu_max = int(words[0]) / int(words[1])
    memory_max = None
    text = (_read_optional(os.path.join(path, "memory.max")) or "").strip()
    if text and text != "max":
        memory_max = int(text)
    return {
        "cpu_seconds": usage / 1e6 if usage is not None else None,
        "working_set_bytes": working_set,
        "cpu_max_cores": cpu_max,
        "memory_max_bytes": memory_max,
    }


def container_metrics(config, state=None, now=None):
    """The connect_container_* families for config["containers"] (docker_root, cgroup_root)."""
    state = state if state is not None else ContainerState()
    families = {
        "running": Family("connect_container_running", "gauge", "1 when the expected container is running, 0 when stopped or missing."),
        "healthy": Family(
            "connect_container_healthy",
            "gauge",
            "1 when the container runs and Docker's state file does not say unhealthy, else 0.",
        ),
        "cpu": Family("connect_container_cpu_usage_seconds_total", "counter", "CPU time of the container's cgroup, in seconds."),
        "cpu_limit": Family("connect_container_cpu_limit_cores", "gauge", "The container's cpus limit in cores (0: none)."),
        "memory": Family(
            "connect_container_memory_working_set_bytes", "gauge", "The container's memory.current minus its inactive file pages, in bytes."
        ),
        "memory_limit": Family("connect_container_memory_limit_bytes", "gauge", "The container's memory limit in bytes (0: none)."),
    }
    index = container_index(config["docker_root"], state.json)
    cgroup_root = config.get("cgroup_root")
    for expected in config.get("containers") or []:
        labels = {"name": expected["name"], "service": expected.get("service") or expected["name"]}
        info = index.get(expected["name"])
        running = info is not None and info["running"]
        families["running"].add(1 if running else 0, labels)
        families["healthy"].add(1 if container_healthy(info) else 0, labels)
        if not running:
            continue
        try:
            host = state.json.load(os.path.join(info["dir"], "hostconfig.json"))
        except (OSError, ValueError):
            host = {}
        host = host if isinstance(host, dict) else {}
        usage = {}
        path = find_cgroup(cgroup_root, info["id"], state.cgroups, now) if cgroup_root else None
        if path:
            try:
                usage = read_cgroup(path)
            except (OSError, ValueError) as exc:  # stopped between the state file and the cgroup
                state.cgroups.pop(info["id"], None)
                log(f"cgroup of {expected['name']} ({path}): {exc}")
        if usage.get("cpu_seconds") is None and usage.get("working_set_bytes") is None and cgroup_root:
            usage = read_cgroup_v1(cgroup_root, info["id"], state.cgroups.setdefault("v1", {}), now)
        nano_cpus = int(host.get("NanoCpus") or 0)
        quota, period = int(host.get("CpuQuota") or 0), int(host.get("CpuPeriod") or 0)
        if nano_cpus > 0:
            cpu_limit = nano_cpus / 1e9
        elif usage.get("cpu_max_cores"):
            cpu_limit = usage["cpu_max_cores"]
        elif quota > 0 and period > 0:
            cpu_limit = quota / period
        else:
            cpu_limit = 0
        memory_limit = int(host.get("Memory") or 0) or usage.get("memory_max_bytes") or 0
        if usage.get("cpu_seconds") is not None:
            families["cpu"].add(usage["cpu_seconds"], labels)
        families["cpu_limit"].add(cpu_limit, labels)
        if usage.get("working_set_bytes") is not None:
            families["memory"].add(usage["working_set_bytes"], labels)
        families["memory_limit"].add(memory_limit, labels)
    return list(families.values())


# --- nginx's access log ----------------------------------------------------------------------------------

# log_format connect '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
#                    '"$http_referer" "$http_user_agent" rt=$request_time '
#                    'ua="$upstream_addr" us="$upstream_status" urt="$upstream_response_time"';
# nginx escapes '"' and '\' inside variables (\x22, or \" with escape=json): a quoted field ends at
# the first unescaped '"', so a client's User-Agent cannot fake the fields after it.
_QUOTED = r'"(?:[^"\\]|\\.)*"'
LOG_LINE = re.compile(
    r"^\S+ - .*? \[[^\]]*\] " + _QUOTED + r" (?P<status>\d{3}) (?:\d+|-) " + _QUOTED + " " + _QUOTED + r" rt=(?P<rt>\d+(?:\.\d+)?)(?:\s|$)"
)


def parse_log_line(line):
    """(status, request time in seconds) of one access log line, or None when it is not one."""
    match = LOG_LINE.match(line)
    if match is None:
        return None
    status = int(match.group("status"))
    if not 100 <= status <= 599:
        return None
    return status, float(match.group("rt"))


def status_class(status):
    return f"{status // 100}xx"


class AccessLogTail:
    """Counts of nginx's access log, read incrementally: the file stays open between reads, so lines
    written to it before a rotation (rename, then a new file) are still counted; a truncated file
    (copytruncate) is read again from its start. At the exporter's start a log larger than
    replay_max_bytes is read from its end, a smaller one whole.

    docker_json: the file is Docker's json-file log of nginx's container (nginx logs to its stdout):
    one {"log": ..., "stream": ..., "time": ...} per line; stderr (nginx's error log) is ignored, and
    the parts of a line Docker split (a "log" without its newline) are joined. update(path) follows
    a new file (the container recreated: a new id) as a rotation."""

    def __init__(self, path, replay_max_bytes=REPLAY_MAX_BYTES, docker_json=False):
        self.path = path
        self.replay_max_bytes = replay_max_bytes
        self.docker_json = docker_json
        self.split_line = ""  # docker_json: the parts of a long line so far
        self.lock = threading.Lock()
        self.handle = None
        self.identity = None  # (st_dev, st_ino) of the open file
        self.offset = 0
        self.started = False
        self.pending = b""
        self.discard_partial = False
        self.requests = dict.fromkeys(STATUS_CLASSES, 0)
        self.bucket_counts = [0] * (len(DURATION_BUCKETS) + 1)  # per bucket, not cumulative; the last one is > 10 s
        self.duration_sum = 0.0
        self.duration_count = 0
        self.skipped = 0

    def update(self, path=None):
        """Read what was written since the last update; path (None: the same) is where the log is now."""
        with self.lock:
            if path is not None:
                self.path = path
            self._update()

    def close(self):
        with self.lock:
            self._close()

    def _close(self):
        if self.handle is not None:
            self.handle.close()
            self.handle = None
            self.identity = None

    def _update(self):
        try:
            st = os.stat(self.path) if self.path else None
        except FileNotFoundError:
            st = None
        if self.handle is not None and (st is None or (st.st_dev, st.st_ino) != self.identity):
            # Renamed or removed: what nginx wrote to the old file since the last read still counts.
            self._drain()
            self._flush_pending()
            self._close()
        if self.handle is None:
            if st is None:
                self.started = True
                return
            self.handle = open(self.path, "rb", buffering=0)  # kept open across scrapes
            opened = os.fstat(self.handle.fileno())
            self.identity = (opened.st_dev, opened.st_ino)
            self.pending, self.discard_partial, self.offset = b"", False, 0
            if not self.started and opened.st_size > self.replay_max_bytes:
                self.handle.seek(opened.st_size - 1)
                self.discard_partial = self.handle.read(1) != b"\n"
                self.offset = opened.st_size
            self.started = True
        elif st.st_size < self.offset:
            # Truncated in place: from its start again.
            self.handle.seek(0)
            self.offset = 0
            self.pending, self.discard_partial = b"", False
        self._drain()

    def _drain(self):
        budget = MAX_READ_PER_UPDATE
        while budget > 0:
            chunk = self.handle.read(min(READ_CHUNK, budget))
            if not chunk:
                return
            self.offset += len(chunk)
            budget -= len(chunk)
            self._feed(chunk)

    def _feed(self, chunk):
        lines = (self.pending + chunk).split(b"\n")
        self.pending = lines.pop()
        if lines and self.discard_partial:
            lines.pop(0)
            self.discard_partial = False
        for line in lines:
            self._observe(line)
        if len(self.pending) > MAX_LINE:
            self.skipped += 1
            self.pending = b""
            self.discard_partial = True

    def _flush_pending(self):
        if self.pending and not self.discard_partial:
            self._observe(self.pending)
        self.pending, self.discard_partial, self.split_line = b"", False, ""

    def _observe(self, raw):
        text = raw.decode("utf-8", "replace").rstrip("\r")
        if not text.strip():
            return
        if self.docker_json:
            try:
                entry = json.loads(text)
                if entry.get("stream", "stdout") != "stdout":
                    return
                part = entry["log"]
                if not isinstance(part, str):
                    raise ValueError("no log text")
            except (ValueError, KeyError, AttributeError):
                self.skipped += 1
                return
            if not part.endswith("\n") and len(self.split_line) + len(part) < MAX_LINE:
                self.split_line += part  # Docker split a long line: the rest comes in the next entries
                return
            text, self.split_line = (self.split_line + part).rstrip("\r\n"), ""
            if not text.strip():
                return
        parsed = parse_log_line(text)
        if parsed is None:
            self.skipped += 1
            return
        status, seconds = parsed
        self.requests[status_class(status)] += 1
        self.bucket_counts[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
        self.duration_sum += seconds
        self.duration_count += 1

    def families(self):
        with self.lock:
            requests = Family("connect_http_requests_total", "counter", "Requests in nginx's access log, by status class.")
            for name in STATUS_CLASSES:
                requests.add(self.requests[name], {"status_class": name})
            duration = Family(
                "connect_http_request_duration_seconds", "histogram", "nginx's $request_time of the requests in its access log."
            )
            cumulative = 0
            for bound, count in zip(DURATION_BUCKETS, self.bucket_counts[:-1], strict=True):
                cumulative += count
                duration.add(cumulative, {"le": format_value(bound)}, "_bucket")
            duration.add(self.duration_count, {"le": "+Inf"}, "_bucket")
            duration.add(self.duration_sum, suffix="_sum")
            duration.add(self.duration_count, suffix="_count")
            skipped = Family(
                "connect_exporter_log_lines_skipped_total", "counter", "Lines of nginx's access log that are not in its connect log_format."
            )
            skipped.add(self.skipped)
            return [requests, duration, skipped]


# --- backup and maintenance status files ------------------------------------------------------------------


def parse_time(value):
    """Seconds since the epoch of an ISO 8601 time (a time without a zone is UTC)."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"not a time: {value!r}")
    text = value.strip()
    if text[-1] in "Zz":
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def read_status_dir(directory):
    """{job: record} of the <job>.json files of a status directory (the job's newest run). A file
    that is not a JSON object with a time is left out (and logged)."""
    records = {}
    for entry in sorted(os.listdir(directory)):
        if entry.startswith(".") or not entry.endswith(".json"):
            continue  # the jobs write .<job>.<random> first, then rename
        path = os.path.join(directory, entry)
        try:
            with open(path, encoding="utf-8") as handle:
                record = json.load(handle)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
            parse_time(record.get("time"))
        except (OSError, ValueError) as exc:
            log(f"{path}: {exc}")
            continue
        records[str(record.get("job") or entry[: -len(".json")])] = record
    return records


class SuccessLog:
    """The newest successful run of each job in a jobs' JSON-lines log (one record per run, as the
    status files), read incrementally."""

    def __init__(self, path):
        self.path = path
        self.identity = None
        self.offset = 0
        self.pending = b""
        self.newest = {}

    def update(self):
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return self.newest
        if (st.st_dev, st.st_ino) != self.identity or st.st_size < self.offset:
            self.identity, self.offset, self.pending = (st.st_dev, st.st_ino), 0, b""
        if st.st_size == self.offset:
            return self.newest
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            data = handle.read(MAX_READ_PER_UPDATE)
        self.offset += len(data)
        lines = (self.pending + data).split(b"\n")
        self.pending = lines.pop()
        for line in lines:
            try:
                record = json.loads(line)
                if record.get("result") == "ok" and record.get("job"):
                    moment = parse_time(record.get("time"))
                    job = str(record["job"])
                    self.newest[job] = max(moment, self.newest.get(job, moment))
            except (ValueError, AttributeError):
                continue
        return self.newest


def status_metrics(prefix, records, remembered=None, successes=None):
    """connect_<prefix>_last_run_timestamp_seconds, _last_result_ok and _last_success_timestamp_seconds
    for {job: newest record}. The newest success: the record's time when it succeeded, else its
    "last_success", else the newest this exporter saw (remembered, updated in place) or a log
    showed (successes); left out when none is known."""
    remembered = remembered if remembered is not None else {}
    successes = successes or {}
    run = Family(f"connect_{prefix}_last_run_timestamp_seconds", "gauge", f"The {prefix} job's newest run, seconds since the epoch.")
    result = Family(f"connect_{prefix}_last_result_ok", "gauge", f"1 when the {prefix} job's newest run succeeded, else 0.")
    success = Family(
        f"connect_{prefix}_last_success_timestamp_seconds", "gauge", f"The {prefix} job's newest successful run, seconds since the epoch."
    )
    for job in sorted(records):
        record = records[job]
        moment = parse_time(record.get("time"))
        ok = record.get("result") == "ok"
        labels = {"job": job}
        run.add(moment, labels)
        result.add(1 if ok else 0, labels)
        known = [value for value in (remembered.get(job), successes.get(job)) if value is not None]
        if ok:
            known.append(moment)
        elif record.get("last_success"):
            try:
                known.append(parse_time(record["last_success"]))
            except ValueError:
                pass
        if known:
            remembered[job] = max(known)
            success.add(remembered[job], labels)
    return [run, result, success]


class JobStatus:
    def __init__(self, prefix, directory, log_path=None):
        self.prefix = prefix
        self.directory = directory
        self.remembered = {}
        self.log = SuccessLog(log_path) if log_path else None

    def families(self):
        records = read_status_dir(self.directory)
        successes = self.log.update() if self.log else None
        return status_metrics(self.prefix, records, self.remembered, successes)


# --- the app upstream -------------------------------------------------------------------------------------

_COMMENT = re.compile(r"#[^\n]*")
_UPSTREAM_BLOCK = re.compile(r"\bupstream\s+([^\s{]+)\s*\{([^}]*)\}")


def parse_upstream(text, name=None):
    """The server lines of the file's upstream blocks (only block `name` if given), in order:
    [{"address", "host", "down", "backup"}]; host is the address without its port."""
    servers = []
    for block in _UPSTREAM_BLOCK.finditer(_COMMENT.sub("", text or "")):
        if name and block.group(1) != name:
            continue
        for statement in block.group(2).split(";"):
            words = statement.split()
            if len(words) < 2 or words[0] != "server":
                continue
            address = words[1]
            if address.startswith("unix:"):
                host = address
            elif address.startswith("["):
                host = address[1:].split("]", 1)[0]
            else:
                host = address.rsplit(":", 1)[0] if ":" in address else address
            flags = {word for word in words[2:] if "=" not in word}
            servers.append({"address": address, "host": host, "down": "down" in flags, "backup": "backup" in flags})
    return servers


def in_rotation(servers):
    """The hosts nginx sends requests to: servers neither marked down nor only a backup."""
    return {server["host"] for server in servers if not server["down"] and not server["backup"]}


def upstream_metrics(config):
    with open(config["upstream_file"], encoding="utf-8") as handle:
        active = in_rotation(parse_upstream(handle.read(), config.get("upstream_name") or None))
    family = Family("connect_app_in_rotation", "gauge", "1 when the app instance is an active server of nginx's upstream file, else 0.")
    for instance in config.get("app_instances") or []:
        family.add(1 if instance in active else 0, {"instance": instance})
    return [family]


# --- the host's network -------------------------------------------------------------------------------------

_EXCLUDED_DEVICE = re.compile(r"^(?:lo|veth.*|br-.*|docker.*)$")


def parse_net_dev(text):
    """{device: (receive bytes, transmit bytes)} of a /proc/<pid>/net/dev."""
    devices = {}
    for line in (text or "").splitlines():
        device, colon, rest = line.partition(":")
        fields = rest.split()
        if not colon or len(fields) < 16 or not fields[0].isdigit() or not fields[8].isdigit():
            continue
        devices[device.strip()] = (int(fields[0]), int(fields[8]))
    return devices


def network_metrics(config):
    with open(os.path.join(config["proc_root"], "1", "net", "dev"), encoding="ascii") as handle:
        devices = parse_net_dev(handle.read())
    receive = Family("connect_host_network_receive_bytes_total", "counter", "Bytes the host's interface received.")
    transmit = Family("connect_host_network_transmit_bytes_total", "counter", "Bytes the host's interface sent.")
    for device in sorted(devices):
        if _EXCLUDED_DEVICE.match(device):
            continue
        receive.add(devices[device][0], {"device": device})
        transmit.add(devices[device][1], {"device": device})
    return [receive, transmit]


# --- the exporter ---------------------------------------------------------------------------------------------


def load_config(path):
    with open(path, encoding="utf-8") as handle:
        config = json.load(handle)
    if not isinstance(config, dict):
        raise ValueError(f"{path}: not a JSON object")
    containers = config.get("containers") or []
    if not isinstance(containers, list) or not all(isinstance(c, dict) and isinstance(c.get("name"), str) for c in containers):
        raise ValueError(f'{path}: "containers" must be a list of {{"name": ..., "service": ...}}')
    if not isinstance(config.get("app_instances") or [], list):
        raise ValueError(f'{path}: "app_instances" must be a list of names')
    return config


class Exporter:
    """The collectors the configuration turns on; collect() renders one scrape."""

    def __init__(self, config):
        self.config = config
        self.lock = threading.Lock()
        self.collectors = []
        self.containers = ContainerState()
        if config.get("docker_root") and config.get("containers"):
            self.collectors.append(("containers", lambda: container_metrics(config, self.containers)))
        replay = config.get("access_log_replay_max_bytes")
        replay = REPLAY_MAX_BYTES if replay is None else int(replay)
        self.access_log = None
        if config.get("access_log"):
            self.access_log = AccessLogTail(config["access_log"], replay)
            self.collectors.append(("access_log", self._access_log))
        elif config.get("access_log_container") and config.get("docker_root"):
            self.access_log = AccessLogTail(None, replay, docker_json=True)
            self.collectors.append(("access_log", self._access_log))
        for prefix in ("backup", "maintenance"):
            if config.get(f"{prefix}_status_dir"):
                status = JobStatus(prefix, config[f"{prefix}_status_dir"], config.get(f"{prefix}_log"))
                self.collectors.append((prefix, status.families))
        if config.get("upstream_file") and config.get("app_instances"):
            self.collectors.append(("upstream", lambda: upstream_metrics(config)))
        if config.get("proc_root"):
            self.collectors.append(("network", lambda: network_metrics(config)))
        self.errors = {name: 0 for name, _collect in self.collectors}

    def _access_log(self):
        if self.access_log.docker_json:
            self.access_log.update(
                container_log_path(self.config["docker_root"], self.config["access_log_container"], self.containers.json)
            )
        else:
            self.access_log.update()
        return self.access_log.families()

    def collect(self):
        with self.lock:
            families = []
            for name, collector in self.collectors:
                try:
                    families.extend(collector())
                except Exception as exc:  # one failing collector never breaks the others
                    self.errors[name] += 1
                    log(f"collector {name}: {type(exc).__name__}: {exc}")
            errors = Family(
                "connect_exporter_scrape_errors_total", "counter", "Scrapes in which the collector failed (its series were left out)."
            )
            for name in self.errors:
                errors.add(self.errors[name], {"collector": name})
            families.append(errors)
            return render(families)


class Handler(BaseHTTPRequestHandler):
    server_version = "connect-exporter"
    sys_version = ""

    def do_GET(self):
        self._answer()

    def do_HEAD(self):
        self._answer()

    def _answer(self):
        path = self.path.split("?", 1)[0]
        status, ctype = 200, "text/plain; charset=utf-8"
        if path == "/metrics":
            try:
                body, ctype = self.server.exporter.collect().encode("utf-8"), CONTENT_TYPE
            except Exception as exc:  # noqa: BLE001 (answered, never a dropped connection)
                status, body = 500, f"error: {type(exc).__name__}: {exc}\n".encode()
        elif path in ("/-/healthy", "/-/ready"):
            body = b"OK\n"
        elif path == "/":
            status, ctype = 200, "text/html; charset=utf-8"
            body = b'<html><head><title>connect-exporter</title></head><body><a href="/metrics">Metrics</a></body></html>\n'
        else:
            status, body = 404, b"not found\n"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format, *args):  # noqa: A002 (stdlib signature)
        pass  # no line per scrape

    def log_error(self, format, *args):  # noqa: A002
        log(format % args)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def make_server(exporter, address="", port=DEFAULT_PORT):
    server = Server((address, port), Handler)
    server.exporter = exporter
    return server


def main(argv=None):
    parser = argparse.ArgumentParser(description="The Connect stack's own Prometheus exporter.")
    parser.add_argument("--config", default=os.environ.get("CONNECT_EXPORTER_CONFIG") or DEFAULT_CONFIG)
    parser.add_argument("--port", type=int, default=int(os.environ.get("CONNECT_EXPORTER_PORT") or DEFAULT_PORT))
    parser.add_argument("--address", default=os.environ.get("CONNECT_EXPORTER_ADDRESS", ""))
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except (OSError, ValueError) as exc:
        log(f"cannot read the configuration: {exc}")
        return 2
    exporter = Exporter(config)
    server = make_server(exporter, args.address, args.port)

    def stop(signum, _frame):
        log(f"{signal.Signals(signum).name}: stopping")
        threading.Thread(target=server.shutdown, daemon=True).start()

    # As PID 1 of its container, a signal without a handler would be ignored.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # The first read of the access log (up to 50 MiB) is done before the first scrape asks.
    threading.Thread(target=exporter.collect, daemon=True).start()
    log(f"listening on {args.address or '*'}:{args.port} ({', '.join(exporter.errors) or 'no collectors'})")
    server.serve_forever(poll_interval=0.5)
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
