"""Bounded HTTP load generator for the local Connect stack (standard library only).

Sends a weighted mix of requests to the test app behind the local nginx and
classifies every answer, so that a test can assert on the counts while a
rolling deploy runs and a benchmark can print throughput figures.

Open loop (a fixed arrival rate; slow answers do not lower it), e.g. during a
rolling deploy::

    python3 benchmarks/loadgen.py --url https://127.0.0.1:8443 --insecure \\
        --rate 60 --duration 120 --mix get=60,post=25,slow=10,health=5

Closed loop (C workers, each on its own keep-alive connection, sending the next
request as soon as the previous one answered), for throughput::

    python3 benchmarks/loadgen.py --url https://127.0.0.1:8443 --insecure \\
        --concurrency 16 --duration 30 --mix get=100 --no-fail-exit

Request kinds (``--mix`` weights them): ``get`` = GET /api/items,
``post`` = POST /api/items {"name": ...}, ``slow`` = GET /api/slow?ms=<--slow-ms>,
``health`` = GET /api/health.

Safety bounds: only 127.0.0.1, localhost and ::1 are accepted as targets;
``--duration`` is required (at most 900 s); at most 200000 requests per run;
SIGTERM, SIGINT or the ``--stop-file`` appearing stop the run early (no new
requests, in-flight ones are awaited for at most ``--timeout`` + 1 s).

Output: a human-readable summary on stderr and a JSON summary on stdout (or in
``--json FILE``); ``--records FILE`` writes one JSON line per request.
Exit status: 0 if no request failed, 1 if any failed, 2 for usage errors
(``--no-fail-exit``: 0 whenever the run completed).

Outcomes: ok (2xx), http_429, http_4xx, http_5xx, timeout, reset (connection
reset, aborted or closed by the server mid-request/response), refused, tls,
other_error (anything else, e.g. a 3xx or a malformed answer) and
dropped_by_client (open loop: not launched because --max-inflight requests were
already in flight). Every outcome but ok is a failure; a 429 is also counted as
rate_limited and is not a failure with --allow-429.

Retries: one case only. A request sent on a REUSED keep-alive connection
that the server closed before any byte of the answer came back is sent again,
once, on a new connection, as browsers do (counted as ``retried_on_reused``,
marked ``retried`` in its record; ``--no-retry`` makes it a failure instead).
Nothing else is retried. An idle keep-alive connection that the server
already closed (readable before a request is written on it) is discarded and
replaced before the request is sent; any other failure of a connection
mid-request is counted in the outcome and the connection replaced for the
next request.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import queue
import random
import select
import signal
import ssl
import sys
import threading
import time
from urllib.parse import urlsplit

ALLOWED_HOSTS = ("127.0.0.1", "localhost", "::1")
MAX_DURATION_S = 900.0
HARD_MAX_REQUESTS = 200_000
MAX_RATE = 10_000.0
MAX_CONCURRENCY = 1_000
MAX_INFLIGHT = 2_000
MAX_CLIENT_IPS = 256 * 254
ERRORS_SAMPLE = 20
DRAIN_GRACE_S = 1.0
USER_AGENT = "connect-loadgen/1"

KINDS = ("get", "post", "slow", "health")
OUTCOMES = ("ok", "http_429", "http_4xx", "http_5xx", "timeout", "reset", "refused", "tls", "other_error", "dropped_by_client")
DEFAULT_MIX = "health=100"

EXAMPLES = """\
examples:
  open loop during a rolling deploy, stop when the deploy is done:
    %(prog)s --url https://127.0.0.1:8443 --insecure --rate 60 --duration 600 \\
        --mix get=60,post=25,slow=10,health=5 --stop-file /tmp/deploy.done --json out.json
  closed-loop throughput benchmark:
    %(prog)s --url https://127.0.0.1:8443 --insecure --concurrency 16 --duration 30 --mix get=100 --no-fail-exit

output:
  stderr: human-readable summary.  stdout (or --json FILE): JSON summary with
  duration_s, requests, rps_achieved, ok_rps, outcomes, failed, rate_limited, by_kind,
  latency_ms, versions, instances, version_timeline, errors_sample (and config,
  stopped_by, started_at, drain_s, in_flight_abandoned, connections, schedule_lag_ms).
  --records FILE: one JSON line per request with kind, method, path, start, end,
  status, outcome, version, instance, error (times: Unix epoch seconds).

exit status: 0 no failed request, 1 some failed, 2 usage error (refused target, bad option).
"""


# --------------------------------------------------------------------------- options


class UsageError(Exception):
    """A bad command line; main() exits 2 with the message."""


def check_target(url):
    """(scheme, host, port, base_path) of url; UsageError unless it is a local http(s) URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"invalid --url {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise UsageError(f"--url must be http:// or https://, not {url!r}")
    host = (parts.hostname or "").lower()
    if host not in ALLOWED_HOSTS:
        raise UsageError(f"refusing target host {host or '(none)'!r} in {url!r}: only {', '.join(ALLOWED_HOSTS)} are allowed")
    if parts.username is not None or parts.password is not None:
        raise UsageError("--url must not contain credentials")
    if parts.query or parts.fragment:
        raise UsageError("--url must not contain a query or fragment")
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    return parts.scheme, host, port, parts.path.rstrip("/")


def parse_mix(text):
    """{'get': 60.0, ...} from 'get=60,post=25'; UsageError on unknown kinds or bad weights."""
    mix = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, weight = item.partition("=")
        name = name.strip().lower()
        if not sep or name not in KINDS:
            raise UsageError(f"--mix item {item!r}: expected KIND=WEIGHT with KIND one of {', '.join(KINDS)}")
        if name in mix:
            raise UsageError(f"--mix names {name!r} twice")
        try:
            value = float(weight)
        except ValueError:
            raise UsageError(f"--mix weight {weight!r} for {name} is not a number") from None
        if not math.isfinite(value) or value < 0:
            raise UsageError(f"--mix weight for {name} must be a finite number >= 0")
        mix[name] = value
    if not mix or sum(mix.values()) <= 0:
        raise UsageError("--mix needs at least one kind with a positive weight")
    return {k: v for k, v in mix.items() if v > 0}


def parse_header(text):
    name, sep, value = text.partition(":")
    name = name.strip()
    if not sep or not name or any(c in name for c in " \t\r\n") or any(c in value for c in "\r\n"):
        raise UsageError(f"--header {text!r}: expected 'Name: value'")
    return name, value.strip()


def build_parser():
    p = argparse.ArgumentParser(
        prog="loadgen.py",
        description="Bounded HTTP load generator for the local Connect stack (127.0.0.1, localhost or ::1 only).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--url", required=True, help="base URL, e.g. https://127.0.0.1:8443 (host must be 127.0.0.1, localhost or ::1)")
    p.add_argument(
        "--duration", type=float, required=True, metavar="S", help=f"issue requests for S seconds (required, 0 < S <= {MAX_DURATION_S:g})"
    )
    p.add_argument(
        "--max-requests",
        type=int,
        metavar="N",
        help=f"stop issuing after N requests (default: unbounded within --duration; hard cap {HARD_MAX_REQUESTS})",
    )
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        "--rate",
        type=float,
        metavar="R",
        help=f"open loop: launch R requests/s on a fixed schedule, whatever earlier requests take (max {MAX_RATE:g})",
    )
    mode.add_argument(
        "--concurrency",
        type=int,
        metavar="C",
        help=f"closed loop: C workers, each sends its next request when the previous one answered (max {MAX_CONCURRENCY})",
    )
    p.add_argument(
        "--max-inflight",
        type=int,
        default=400,
        metavar="N",
        help=f"open loop: at most N requests in flight; a launch beyond it is counted as dropped_by_client "
        f"(default 400, max {MAX_INFLIGHT})",
    )
    p.add_argument(
        "--mix",
        default=DEFAULT_MIX,
        help=f"weighted request kinds, e.g. get=60,post=25,slow=10,health=5 (default {DEFAULT_MIX}); "
        "get=GET /api/items, post=POST /api/items, slow=GET /api/slow?ms=SLOW_MS, health=GET /api/health",
    )
    p.add_argument("--slow-ms", type=int, default=5000, metavar="MS", help="ms parameter of the slow kind (default 5000, max 30000)")
    p.add_argument(
        "--seed", type=int, default=1, help="seed of the request sequence (kinds, POST names); same seed, same sequence (default 1)"
    )
    p.add_argument("--insecure", action="store_true", help="do not verify the TLS certificate (self-signed local nginx)")
    p.add_argument("--cacert", metavar="FILE", help="verify the TLS certificate against this CA bundle instead of the system store")
    p.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="per-request socket timeout for connect and each read (default 30, max 300); "
        "also bounds the final wait for in-flight requests",
    )
    p.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'K: V'",
        help="extra request header, repeatable (e.g. --header 'Host: connect.example')",
    )
    p.add_argument(
        "--client-ips",
        type=int,
        default=0,
        metavar="N",
        help="add X-Forwarded-For: 198.18.x.y rotating over N addresses "
        "(N simulated clients behind a trusted proxy; default 0 = no header)",
    )
    p.add_argument("--allow-429", action="store_true", help="a 429 answer is counted as rate_limited but not as failed")
    p.add_argument(
        "--no-retry",
        dest="retry_reused",
        action="store_false",
        help="do not resend a request whose reused keep-alive connection closed before any answer byte (browsers do; default: resend once)",
    )
    p.add_argument("--stop-file", metavar="PATH", help="stop early once PATH exists (checked every 0.1 s; must not exist at start)")
    p.add_argument("--json", metavar="FILE", help="write the JSON summary to FILE instead of stdout")
    p.add_argument("--records", metavar="FILE", help="write one JSON line per request to FILE")
    p.add_argument(
        "--progress", type=float, default=0.0, metavar="S", help="print a progress line on stderr every S seconds (default 0 = off)"
    )
    p.add_argument("--no-fail-exit", action="store_true", help="exit 0 even if requests failed (benchmarks)")
    return p


class Config:
    """Validated options."""

    def __init__(self, args):
        self.url = args.url
        self.scheme, self.host, self.port, self.base_path = check_target(args.url)
        if not (0 < args.duration <= MAX_DURATION_S) or not math.isfinite(args.duration):
            raise UsageError(f"--duration must be > 0 and <= {MAX_DURATION_S:g} seconds")
        self.duration = args.duration
        if args.max_requests is not None and not (1 <= args.max_requests <= HARD_MAX_REQUESTS):
            raise UsageError(f"--max-requests must be between 1 and {HARD_MAX_REQUESTS}")
        self.max_requests = args.max_requests
        self.limit = args.max_requests or HARD_MAX_REQUESTS
        self.rate = args.rate
        self.concurrency = args.concurrency
        if self.rate is not None and not (0 < self.rate <= MAX_RATE and math.isfinite(self.rate)):
            raise UsageError(f"--rate must be > 0 and <= {MAX_RATE:g}")
        if self.concurrency is not None and not (1 <= self.concurrency <= MAX_CONCURRENCY):
            raise UsageError(f"--concurrency must be between 1 and {MAX_CONCURRENCY}")
        self.mode = "open" if self.rate is not None else "closed"
        if not (1 <= args.max_inflight <= MAX_INFLIGHT):
            raise UsageError(f"--max-inflight must be between 1 and {MAX_INFLIGHT}")
        self.max_inflight = args.max_inflight
        self.mix = parse_mix(args.mix)
        if not (1 <= args.slow_ms <= 30000):
            raise UsageError("--slow-ms must be between 1 and 30000")
        self.slow_ms = args.slow_ms
        self.seed = args.seed
        if not (0 < args.timeout <= 300) or not math.isfinite(args.timeout):
            raise UsageError("--timeout must be > 0 and <= 300 seconds")
        self.timeout = args.timeout
        self.headers = {"User-Agent": USER_AGENT, "Accept": "application/json", "Connection": "keep-alive"}
        lower = {k.lower(): k for k in self.headers}
        for text in args.header:
            name, value = parse_header(text)
            old = lower.pop(name.lower(), None)
            if old is not None:
                del self.headers[old]
            self.headers[name] = value
            lower[name.lower()] = name
        if not (0 <= args.client_ips <= MAX_CLIENT_IPS):
            raise UsageError(f"--client-ips must be between 0 and {MAX_CLIENT_IPS}")
        if args.client_ips and "x-forwarded-for" in lower:
            raise UsageError("--client-ips and --header 'X-Forwarded-For: ...' exclude each other")
        self.client_ips = args.client_ips
        self.allow_429 = args.allow_429
        self.retry_reused = args.retry_reused
        self.stop_file = args.stop_file
        if self.stop_file and os.path.exists(self.stop_file):
            raise UsageError(f"--stop-file {self.stop_file} already exists; remove it first (it would stop the run at once)")
        if args.progress < 0 or not math.isfinite(args.progress):
            raise UsageError("--progress must be >= 0")
        self.progress = args.progress
        self.json_path = args.json
        self.records_path = args.records
        self.no_fail_exit = args.no_fail_exit
        self.ssl_context = None
        if self.scheme == "https":
            try:
                ctx = ssl.create_default_context(cafile=args.cacert)
            except (OSError, ssl.SSLError) as exc:
                raise UsageError(f"--cacert {args.cacert}: {exc}") from None
            if args.insecure:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            self.ssl_context = ctx

    def describe(self):
        return {
            "url": self.url,
            "mode": self.mode,
            "rate": self.rate,
            "concurrency": self.concurrency,
            "max_inflight": self.max_inflight if self.mode == "open" else None,
            "duration": self.duration,
            "max_requests": self.max_requests,
            "mix": self.mix,
            "slow_ms": self.slow_ms,
            "seed": self.seed,
            "timeout": self.timeout,
            "client_ips": self.client_ips,
            "allow_429": self.allow_429,
            "retry_reused": self.retry_reused,
        }


# --------------------------------------------------------------------------- requests


class Plan:
    """The deterministic request sequence: kind, method, path, body and headers of request i."""

    def __init__(self, cfg):
        self.cfg = cfg
        rng = random.Random(cfg.seed)
        names = list(cfg.mix)
        self.kinds = rng.choices(names, weights=[cfg.mix[n] for n in names], k=cfg.limit)
        base = cfg.base_path
        self.paths = {
            "get": ("GET", base + "/api/items"),
            "post": ("POST", base + "/api/items"),
            "slow": ("GET", f"{base}/api/slow?ms={cfg.slow_ms}"),
            "health": ("GET", base + "/api/health"),
        }

    def request(self, i):
        kind = self.kinds[i]
        method, path = self.paths[kind]
        headers = dict(self.cfg.headers)
        body = None
        if kind == "post":
            body = json.dumps({"name": f"loadgen-{self.cfg.seed}-{i}"}).encode()
            headers["Content-Type"] = "application/json"
        if self.cfg.client_ips:
            n = i % self.cfg.client_ips
            headers["X-Forwarded-For"] = f"198.18.{n // 254}.{n % 254 + 1}"
        return kind, method, path, body, headers


class Record:
    __slots__ = ("index", "kind", "method", "path", "start", "end", "status", "outcome", "version", "instance", "error", "retried")

    def __init__(self, index, kind, method, path, start):
        self.index = index
        self.kind = kind
        self.method = method
        self.path = path
        self.start = start
        self.end = start
        self.status = None
        self.outcome = None
        self.version = None
        self.instance = None
        self.error = None
        self.retried = False

    def as_dict(self, clock):
        return {
            "kind": self.kind,
            "method": self.method,
            "path": self.path,
            "start": round(clock.wall(self.start), 6),
            "end": round(clock.wall(self.end), 6),
            "status": self.status,
            "outcome": self.outcome,
            "version": self.version,
            "instance": self.instance,
            "error": self.error,
            "retried": self.retried,
        }


class Clock:
    """Monotonic time for scheduling and latency, mapped onto one time.time() anchor for reporting."""

    def __init__(self):
        self.mono0 = time.monotonic()
        self.wall0 = time.time()

    def wall(self, mono):
        return self.wall0 + (mono - self.mono0)


def classify_status(status):
    if 200 <= status < 300:
        return "ok"
    if status == 429:
        return "http_429"
    if 400 <= status < 500:
        return "http_4xx"
    if 500 <= status < 600:
        return "http_5xx"
    return "other_error"


def classify_error(exc, stage):
    """Outcome of an exception raised at stage 'connect' (TCP + TLS handshake), 'send' or 'recv'."""
    if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError
        return "timeout"
    if isinstance(exc, ssl.SSLError):
        if stage != "connect" and isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
            return "reset"
        return "tls"
    if isinstance(exc, ssl.CertificateError):
        return "tls"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, http.client.IncompleteRead)):
        return "reset"  # http.client.RemoteDisconnected is a ConnectionResetError
    return "other_error"


def describe_error(exc):
    text = str(exc) or exc.__class__.__name__
    if isinstance(exc, http.client.IncompleteRead):
        text = f"{len(exc.partial)} bytes read, {exc.expected} more expected"
    return f"{exc.__class__.__name__}: {text}"[:300]


def _dropped(sock):
    """True if an idle keep-alive socket is readable: the server closed it (or sent something unasked)."""
    try:
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True
        poller = select.poll()
        poller.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


class Client:
    """One keep-alive connection, used by one thread at a time; reconnects lazily."""

    def __init__(self, cfg, stats):
        self.cfg = cfg
        self.stats = stats
        self.conn = None

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
            self.conn = None

    def _connection(self):
        if self.conn is not None and self.conn.sock is not None and _dropped(self.conn.sock):
            self.close()
            self.stats.add("stale_discarded")
        if self.conn is None:
            cfg = self.cfg
            if cfg.scheme == "https":
                self.conn = http.client.HTTPSConnection(cfg.host, cfg.port, timeout=cfg.timeout, context=cfg.ssl_context)
            else:
                self.conn = http.client.HTTPConnection(cfg.host, cfg.port, timeout=cfg.timeout)
        if self.conn.sock is None:
            self.conn.connect()
            self.stats.add("opened")
        return self.conn

    def execute(self, rec, method, path, body, headers):
        """Send one request; fill rec.status/outcome/version/instance/error/end.

        Like browsers (Chromium's ShouldResendRequest) and urllib3, a request
        on a REUSED keep-alive connection that the server closed before a
        single byte of the answer came back is sent again, once, on a new
        connection: the server closed an idle connection (an nginx reload
        does) as the request was on its way, so it never saw it. Counted
        as `retried_on_reused`, per request in the records; --no-retry makes
        it a failure instead."""
        for attempt in (1, 2):
            reused = self.conn is not None and self.conn.sock is not None
            retry = self._attempt(rec, method, path, body, headers)
            if not (retry and reused and attempt == 1 and self.cfg.retry_reused):
                return
            self.stats.add("retried_on_reused")
            rec.retried = True

    def _attempt(self, rec, method, path, body, headers):
        """One try; True when the connection closed before any answer byte."""
        rec.status = rec.error = rec.version = rec.instance = None
        stage = "connect"
        try:
            conn = self._connection()
            stage = "send"
            conn.request(method, path, body=body, headers=headers)
            stage = "recv"
            resp = conn.getresponse()
            stage = "body"
            data = resp.read()
            rec.end = time.monotonic()
            rec.status = resp.status
            rec.outcome = classify_status(resp.status)
            rec.version = resp.getheader("X-App-Version")
            rec.instance = resp.getheader("X-App-Instance")
            if rec.version is None and data[:1] == b"{":
                try:
                    doc = json.loads(data)
                except ValueError:
                    doc = None
                if isinstance(doc, dict):
                    rec.version = doc.get("version") if isinstance(doc.get("version"), str) else None
                    rec.instance = doc.get("instance") if isinstance(doc.get("instance"), str) else None
            if rec.outcome != "ok":
                snippet = data[:120].decode("utf-8", "replace").replace("\n", " ")
                rec.error = f"HTTP {resp.status} {resp.reason}: {snippet}".strip()
            return False
        except Exception as exc:  # noqa: BLE001 - every failure is classified, none escapes the worker
            rec.end = time.monotonic()
            rec.outcome = classify_error(exc, "recv" if stage == "body" else stage)
            rec.error = f"{stage}: {describe_error(exc)}"
            self.close()
            closed_before_answer = stage in ("send", "recv") and isinstance(
                exc, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
            )
            return closed_before_answer


class Stats:
    """Counters shared by the worker threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {"opened": 0, "stale_discarded": 0, "retried_on_reused": 0}

    def add(self, key):
        with self.lock:
            self.counts[key] += 1


# --------------------------------------------------------------------------- the run


class Run:
    def __init__(self, cfg):
        self.cfg = cfg
        self.plan = Plan(cfg)
        self.stats = Stats()
        self.lock = threading.Lock()
        self.records = []
        self.inflight = {}  # index -> Record
        self.stop_event = threading.Event()
        self.stopped_by = None
        self.signals = 0
        self.lags = []
        self.next_check = 0.0
        self.next_progress = 0.0

    # --- stop conditions ---------------------------------------------------------------
    def on_signal(self, signum, _frame):
        self.signals += 1
        if self.stopped_by is None:
            self.stopped_by = "signal:" + signal.Signals(signum).name
        self.stop_event.set()

    def should_stop(self, now):
        """True once a signal arrived or the stop file exists (checked at most every 0.1 s)."""
        if self.stop_event.is_set():
            return True
        if self.cfg.stop_file and now >= self.next_check:
            self.next_check = now + 0.1
            if os.path.exists(self.cfg.stop_file):
                if self.stopped_by is None:
                    self.stopped_by = "stop_file"
                self.stop_event.set()
                return True
        return False

    def maybe_progress(self, now):
        if self.cfg.progress and now >= self.next_progress:
            self.next_progress = now + self.cfg.progress
            with self.lock:
                done = list(self.records)
                inflight = len(self.inflight)
            ok = sum(1 for r in done if r.outcome == "ok")
            elapsed = now - self.t0
            print(
                f"loadgen: t={elapsed:.1f}s done={len(done)} ok={ok} not_ok={len(done) - ok} inflight={inflight}",
                file=sys.stderr,
                flush=True,
            )

    # --- one request ----------------------------------------------------------------------
    def begin(self, i):
        kind, method, path, body, headers = self.plan.request(i)
        rec = Record(i, kind, method, path, time.monotonic())
        with self.lock:
            self.inflight[i] = rec
        return rec, body, headers

    def finish(self, rec):
        with self.lock:
            if self.inflight.pop(rec.index, None) is not None:
                self.records.append(rec)
            # else: abandoned at shutdown, already recorded

    def drop(self, i, when):
        kind, method, path, _body, _headers = self.plan.request(i)
        rec = Record(i, kind, method, path, when)
        rec.outcome = "dropped_by_client"
        rec.error = f"not launched: {self.cfg.max_inflight} requests already in flight (--max-inflight)"
        with self.lock:
            self.records.append(rec)

    def inflight_count(self):
        with self.lock:
            return len(self.inflight)

    # --- open loop ------------------------------------------------------------------------
    def open_worker(self, jobs):
        client = Client(self.cfg, self.stats)
        try:
            while True:
                job = jobs.get()
                if job is None:
                    return
                rec, body, headers = job
                client.execute(rec, rec.method, rec.path, body, headers)
                self.finish(rec)
        finally:
            client.close()

    def run_open(self):
        cfg = self.cfg
        jobs = queue.SimpleQueue()
        threads = []
        interval = 1.0 / cfg.rate
        t0 = self.t0
        deadline = t0 + cfg.duration
        i = 0
        issue_end = None
        while issue_end is None:
            if i >= cfg.limit:
                self.stopped_by = self.stopped_by or "max_requests"
                issue_end = min(t0 + i * interval, deadline)
                break
            target = t0 + i * interval
            if target >= deadline:
                self.stopped_by = self.stopped_by or "duration"
                issue_end = deadline
                break
            while True:
                now = time.monotonic()
                if self.should_stop(now):
                    issue_end = now
                    break
                self.maybe_progress(now)
                delay = target - now
                if delay <= 0:
                    break
                self.stop_event.wait(min(delay, 0.05))
            if issue_end is not None:
                break
            now = time.monotonic()
            self.lags.append(now - target)
            with self.lock:
                busy = len(self.inflight)
            if busy >= cfg.max_inflight:
                self.drop(i, target)
            else:
                rec, body, headers = self.begin(i)
                if busy >= len(threads):  # every thread may be busy: add one (never more than max_inflight)
                    t = threading.Thread(target=self.open_worker, args=(jobs,), name=f"loadgen-{len(threads)}", daemon=True)
                    t.start()
                    threads.append(t)
                jobs.put((rec, body, headers))
            i += 1
        self.issue_end = issue_end
        self.drain(lambda: self.inflight_count() == 0)
        for _thread in threads:
            jobs.put(None)

    # --- closed loop ----------------------------------------------------------------------
    def closed_worker(self, deadline, exits):
        client = Client(self.cfg, self.stats)
        try:
            while not self.stop_event.is_set():
                if time.monotonic() >= deadline:
                    break
                with self.lock:
                    if self.next_index >= self.cfg.limit:
                        break
                    i = self.next_index
                    self.next_index += 1
                rec, body, headers = self.begin(i)
                client.execute(rec, rec.method, rec.path, body, headers)
                self.finish(rec)
        finally:
            exits.append(time.monotonic())
            client.close()

    def run_closed(self):
        cfg = self.cfg
        deadline = self.t0 + cfg.duration
        self.next_index = 0
        exits = []
        threads = [
            threading.Thread(target=self.closed_worker, args=(deadline, exits), name=f"loadgen-{n}", daemon=True)
            for n in range(cfg.concurrency)
        ]
        for t in threads:
            t.start()
        issue_end = None
        while issue_end is None:
            now = time.monotonic()
            if self.should_stop(now):
                issue_end = now
            elif now >= deadline:
                self.stopped_by = self.stopped_by or "duration"
                issue_end = deadline
            elif not any(t.is_alive() for t in threads):
                self.stopped_by = self.stopped_by or "max_requests"
                issue_end = min(max(exits, default=now), deadline)
            else:
                self.maybe_progress(now)
                self.stop_event.wait(0.05)
        self.issue_end = issue_end
        self.stop_event.set()  # the workers stop issuing
        self.drain(lambda: not any(t.is_alive() for t in threads))

    # --- shared ---------------------------------------------------------------------------
    def drain(self, done):
        """Wait for in-flight requests, at most --timeout + 1 s (a second signal ends the wait)."""
        signals_at_start = self.signals
        limit = time.monotonic() + self.cfg.timeout + DRAIN_GRACE_S
        while not done():
            now = time.monotonic()
            if now >= limit or self.signals > signals_at_start:
                break
            time.sleep(0.01)
        self.drain_end = time.monotonic()
        with self.lock:
            left = sorted(self.inflight.values(), key=lambda r: r.index)
            self.inflight.clear()
            for rec in left:
                rec.end = self.drain_end
                if self.signals > signals_at_start:
                    rec.outcome = "other_error"
                    rec.error = "abandoned in flight: the run was interrupted twice"
                else:
                    rec.outcome = "timeout"
                    rec.error = f"still in flight {self.drain_end - rec.start:.1f} s after start when the run ended"
                self.records.append(rec)
        self.abandoned_count = len(left)

    def execute(self):
        self.clock = Clock()
        self.t0 = self.clock.mono0
        self.next_progress = self.t0 + self.cfg.progress
        if self.cfg.mode == "open":
            old = sys.getswitchinterval()
            sys.setswitchinterval(0.001)  # the scheduler thread gets the GIL back quickly
            try:
                self.run_open()
            finally:
                sys.setswitchinterval(old)
        else:
            self.run_closed()
        self.records.sort(key=lambda r: r.index)
        return self.summary()

    # --- results --------------------------------------------------------------------------
    def summary(self):
        cfg = self.cfg
        clock = self.clock
        records = self.records
        duration = max(self.issue_end - self.t0, 1e-9)
        outcomes = dict.fromkeys(OUTCOMES, 0)
        for r in records:
            outcomes[r.outcome] += 1
        n = len(records)
        ok = outcomes["ok"]
        failed = n - ok - (outcomes["http_429"] if cfg.allow_429 else 0)
        sent = n - outcomes["dropped_by_client"]

        by_kind = {}
        for kind in cfg.mix:
            rs = [r for r in records if r.kind == kind]
            lat = sorted((r.end - r.start) * 1000 for r in rs if r.outcome == "ok")
            by_kind[kind] = {
                "count": len(rs),
                "ok": len(lat),
                "failed": sum(1 for r in rs if r.outcome != "ok" and not (cfg.allow_429 and r.outcome == "http_429")),
                "p50_ms": percentile(lat, 50),
                "p90_ms": percentile(lat, 90),
                "p99_ms": percentile(lat, 99),
                "max_ms": round(lat[-1], 3) if lat else None,
            }
        lat = sorted((r.end - r.start) * 1000 for r in records if r.outcome == "ok")
        versions, instances, timeline = {}, {}, {}
        for r in records:
            if r.instance is not None:
                instances[r.instance] = instances.get(r.instance, 0) + 1
            if r.version is None:
                continue
            versions[r.version] = versions.get(r.version, 0) + 1
            t = timeline.get(r.version)
            if t is None:
                timeline[r.version] = [r.start, r.start, r.end, r.end]
            else:
                t[0], t[1], t[2], t[3] = min(t[0], r.start), max(t[1], r.start), min(t[2], r.end), max(t[3], r.end)
        version_timeline = {
            v: {k: round(clock.wall(x), 6) for k, x in zip(("first_start", "last_start", "first_end", "last_end"), t, strict=True)}
            for v, t in sorted(timeline.items(), key=lambda item: item[1][0])
        }
        errors = []
        for r in records:
            if r.outcome == "ok" or (cfg.allow_429 and r.outcome == "http_429"):
                continue
            if len(errors) >= ERRORS_SAMPLE:
                break
            errors.append(
                f"{_iso(clock.wall(r.start))} +{(r.start - self.t0):.3f}s #{r.index} {r.kind} {r.method} {r.path} -> {r.outcome}"
                + (f" ({r.status})" if r.status is not None and r.outcome != "ok" else "")
                + f": {r.error}"
            )
        lags = sorted(x * 1000 for x in self.lags)
        return {
            "duration_s": round(duration, 3),
            "requests": n,
            "rps_achieved": round(sent / duration, 2),
            "ok_rps": round(ok / duration, 2),
            "outcomes": outcomes,
            "failed": failed,
            "rate_limited": outcomes["http_429"],
            "by_kind": by_kind,
            "latency_ms": {"p50": percentile(lat, 50), "p90": percentile(lat, 90), "p99": percentile(lat, 99), "max": percentile(lat, 100)},
            "versions": dict(sorted(versions.items())),
            "instances": dict(sorted(instances.items())),
            "version_timeline": version_timeline,
            "errors_sample": errors,
            "started_at": round(clock.wall0, 6),
            "stopped_by": self.stopped_by,
            "drain_s": round(self.drain_end - self.issue_end, 3),
            "in_flight_abandoned": self.abandoned_count,
            "connections": dict(self.stats.counts),
            "schedule_lag_ms": {"p50": percentile(lags, 50), "p99": percentile(lags, 99), "max": percentile(lags, 100)} if lags else None,
            "config": cfg.describe(),
        }

    def write_records(self, path):
        with open(path, "w", encoding="utf-8") as fh:
            for r in self.records:
                fh.write(json.dumps(r.as_dict(self.clock), separators=(",", ":")) + "\n")


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list, rounded to µs; None for an empty list."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, math.ceil(p / 100 * len(sorted_values)) - 1))
    return round(sorted_values[k], 3)


def _iso(epoch):
    return time.strftime("%H:%M:%S", time.localtime(epoch)) + f".{int(epoch * 1000) % 1000:03d}"


def human_summary(s):
    cfg = s["config"]
    mode = (
        f"open loop {cfg['rate']:g} r/s (max in flight {cfg['max_inflight']})"
        if cfg["mode"] == "open"
        else f"closed loop, {cfg['concurrency']} workers"
    )
    mix = ",".join(f"{k}={v:g}" for k, v in cfg["mix"].items())

    def ms(v):
        return "-" if v is None else f"{v:.1f}"

    lines = [
        f"loadgen: {mode}, mix {mix}, {cfg['url']}; stopped by {s['stopped_by']}",
        f"  {s['requests']} requests in {s['duration_s']:.1f} s: {s['rps_achieved']:.1f} r/s sent, {s['ok_rps']:.1f} ok r/s;"
        f" failed {s['failed']}, rate limited {s['rate_limited']}; drain {s['drain_s']:.1f} s"
        + (f", {s['in_flight_abandoned']} abandoned in flight" if s["in_flight_abandoned"] else ""),
        "  outcomes: " + " ".join(f"{k}={v}" for k, v in s["outcomes"].items() if v or k == "ok"),
        "  latency of ok answers, ms: "
        + " ".join(f"{k} {ms(s['latency_ms'][k])}" for k in ("p50", "p90", "p99", "max"))
        + f"; connections opened {s['connections']['opened']}, stale discarded {s['connections']['stale_discarded']}"
        + f", resent after a reused connection closed {s['connections']['retried_on_reused']}",
    ]
    if s["requests"] == 0:
        lines.append("  warning: no request was issued")
    if s["schedule_lag_ms"]:
        lag = s["schedule_lag_ms"]
        lines.append(f"  launch lag behind schedule, ms: p50 {ms(lag['p50'])} p99 {ms(lag['p99'])} max {ms(lag['max'])}")
    for kind, k in s["by_kind"].items():
        lines.append(
            f"  {kind:<7} {k['count']:>7} sent {k['ok']:>7} ok {k['failed']:>6} failed"
            f"   p50 {ms(k['p50_ms'])}  p90 {ms(k['p90_ms'])}  p99 {ms(k['p99_ms'])}  max {ms(k['max_ms'])} ms"
        )
    if s["versions"]:
        lines.append("  versions: " + " ".join(f"{k}={v}" for k, v in s["versions"].items()))
    if s["instances"]:
        lines.append("  instances: " + " ".join(f"{k}={v}" for k, v in s["instances"].items()))
    for v, t in s["version_timeline"].items():
        lines.append(
            f"  {v}: started {_iso(t['first_start'])} .. {_iso(t['last_start'])}, answered {_iso(t['first_end'])} .. {_iso(t['last_end'])}"
        )
    if s["errors_sample"]:
        lines.append(f"  first {len(s['errors_sample'])} failed requests:")
        lines.extend("    " + e for e in s["errors_sample"])
    return "\n".join(lines)


def _write_atomic(path, text):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on a bad option
    try:
        cfg = Config(args)
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        print(f"loadgen.py: error: {exc}", file=sys.stderr)
        return 2
    run = Run(cfg)
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            handlers[sig] = signal.signal(sig, run.on_signal)
    try:
        summary = run.execute()
    finally:
        for sig, old in handlers.items():
            signal.signal(sig, old)
    print(human_summary(summary), file=sys.stderr, flush=True)
    if cfg.records_path:
        run.write_records(cfg.records_path)
    text = json.dumps(summary, indent=2) + "\n"
    if cfg.json_path:
        _write_atomic(cfg.json_path, text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    if summary["failed"] and not cfg.no_fail_exit:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
