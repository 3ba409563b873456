"""Connect test app: the HTTP side of the app contract (docs/app-contract.md).

python3 /app/server.py  -- listens on PORT (default 3001), HTTP/1.1 keep-alive.
GET /metrics: the business metrics in Prometheus' text format (totals from the
database, cached for METRICS_CACHE_SECONDS; 503 while the database does not answer).
On SIGTERM/SIGINT: stops accepting, closes idle keep-alive connections,
finishes in-flight requests (at most SHUTDOWN_TIMEOUT s, default 30), exits 0.
Test stand-in only; never used in production."""

import base64
import binascii
import hashlib
import json
import mimetypes
import os
import re
import secrets
import select
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import common
import psycopg2
import psycopg2.errors
from common import BROKEN, INSTANCE, VERSION, log, now_iso, safe_error
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PORT = common.env_int("PORT", 3001, 1, 65535)
HOST = os.environ.get("HOST", "0.0.0.0")
# Idle keep-alive timeout, in ms like Next.js' KEEP_ALIVE_TIMEOUT; Node's
# default is 5 s. Proxies must close idle upstream connections before this.
KEEP_ALIVE_TIMEOUT = common.env_int("KEEP_ALIVE_TIMEOUT", 5000, 100) / 1000.0
SHUTDOWN_TIMEOUT = common.env_int("SHUTDOWN_TIMEOUT", 30, 0, 300)
# Bound of GET /api/health (below the usual 5 s healthcheck timeout).
HEALTH_TIMEOUT = common.env_int("HEALTH_TIMEOUT_MS", 4000, 100, 60000) / 1000.0
HEALTH_POOL = ThreadPoolExecutor(max_workers=12, thread_name_prefix="health")
# How long idle keep-alive connections stay open once draining starts.
IDLE_GRACE = common.env_int("SHUTDOWN_IDLE_GRACE_MS", 1000, 0, 30000) / 1000.0
MAX_BODY = 10 * 1024 * 1024
# User uploads (app contract: UPLOAD_DIR, a host directory shared by every instance).
UPLOAD_DIR = os.environ.get("UPLOAD_DIR", "")
UPLOAD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
SLOW_MAX_MS = 30000
JOBS_KEY = "connect:jobs"
STATIC_ROOT = os.path.join(common.APP_DIR, "public")
STARTED = time.monotonic()
BRN_AAD = b"connect:brn:v1"
# GET /metrics: one query for every total, at most every METRICS_CACHE_SECONDS per
# process, answered within METRICS_TIMEOUT (else 503); sessions count when seen
# within SESSION_WINDOW seconds.
METRICS_CACHE_SECONDS = common.env_int("METRICS_CACHE_SECONDS", 5, 0, 300)
METRICS_TIMEOUT = common.env_int("METRICS_TIMEOUT_MS", 4000, 100, 60000) / 1000.0
METRICS_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="metrics")
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SESSION_WINDOW = 300
SESSIONS_MAX = 100000
EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{1,60}")

DB = None
CACHE = None
QUEUE = None
AES = None


def parse_key(raw):
    """ENCRYPTION_KEY: 32 bytes, given as 64 hex digits or as base64."""
    raw = raw.strip()
    if re.fullmatch(r"[0-9a-fA-F]{64}", raw):
        return bytes.fromhex(raw)
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            key = decode(raw + "=" * (-len(raw) % 4))
        except (binascii.Error, ValueError):
            continue
        if len(key) == 32:
            return key
    raise ValueError("ENCRYPTION_KEY must be 32 bytes: 64 hex digits or base64 of 32 bytes")


class Drain:
    """What the graceful shutdown needs to know about connections."""

    lock = threading.Lock()
    idle_changed = threading.Condition(lock)
    draining = False
    busy = 0
    idle = set()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    allow_reuse_address = True


class HttpError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "connect-testapp"
    sys_version = ""
    timeout = KEEP_ALIVE_TIMEOUT
    _busy = False

    # --- connection bookkeeping for the drain ------------------------------
    def handle_one_request(self):
        with Drain.lock:
            if Drain.draining and not _readable(self.connection):
                self.close_connection = True
                return
            Drain.idle.add(self)
        try:
            super().handle_one_request()
        except OSError:
            self.close_connection = True
        finally:
            with Drain.lock:
                Drain.idle.discard(self)
                if self._busy:
                    self._busy = False
                    Drain.busy -= 1
                Drain.idle_changed.notify_all()

    def parse_request(self):
        with Drain.lock:
            Drain.idle.discard(self)
            if not self._busy:
                self._busy = True
                Drain.busy += 1
        self._t0 = time.monotonic()
        return super().parse_request()

    # --- plumbing ------------------------------------------------------------
    def log_message(self, format, *args):  # noqa: A002 (stdlib signature)
        log("http", format % args)

    def log_error(self, format, *args):  # noqa: A002
        if not format.startswith("Request timed out"):  # idle keep-alive closed
            log("http", format % args)

    def log_request(self, code="-", size="-"):
        ms = int((time.monotonic() - getattr(self, "_t0", time.monotonic())) * 1000)
        log("http", f'{self.address_string()} "{self.requestline}" {code}', ms=ms)

    def do_GET(self):
        self.dispatch("GET")

    def do_HEAD(self):
        self.dispatch("HEAD")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks, total = [], 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    self.close_connection = True
                    raise HttpError(413, "request body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            raise HttpError(413, "request body too large")
        return self.rfile.read(length) if length > 0 else b""

    def json_body(self):
        raw = self.body
        if not raw:
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            raise HttpError(400, "body is not valid JSON") from None
        if not isinstance(data, dict):
            raise HttpError(400, "body must be a JSON object")
        return data

    def send(self, status, body, ctype="application/json", headers=None):
        if isinstance(body, (dict, list)):
            data = json.dumps(body, default=str).encode()
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-App-Version", VERSION)
        self.send_header("X-App-Instance", INSTANCE)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if "Cache-Control" not in (headers or {}):
            self.send_header("Cache-Control", "no-store")
        if Drain.draining:
            self.close_connection = True
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()

    def dispatch(self, method):
        url = urlsplit(self.path)
        self.query = parse_qs(url.query)
        auth = self.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer " and auth[7:].strip():
            Sessions.seen(auth[7:].strip())
        try:
            self.body = self.read_body()
            routes = [r for r in ROUTES if r[1].fullmatch(url.path)]
            if not routes:
                raise HttpError(404, "not found")
            for methods, pattern, fn in routes:
                if method in methods or (method == "HEAD" and "GET" in methods):
                    m = pattern.fullmatch(url.path)
                    result = fn(self, *m.groups())
                    if result is not None:
                        status, body = result[0], result[1]
                        self.send(status, body, *result[2:])
                    return
            raise HttpError(405, f"method {method} not allowed")
        except HttpError as exc:
            self.send(exc.status, {"error": str(exc)})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # noqa: BLE001 (answer 500, log the traceback)
            log("http", "error: " + "".join(traceback.format_exception_only(type(exc), exc)).strip())
            traceback.print_exc(file=sys.stdout)
            try:
                self.send(500, {"error": safe_error(exc)})
            except OSError:
                self.close_connection = True


class Sessions:
    """Sessions this process saw lately: a bearer token it issued (login, register) or was sent.
    Only a hash of each token is kept, with when it was last seen."""

    lock = threading.Lock()
    last_seen = {}

    @classmethod
    def seen(cls, token):
        key = hashlib.sha256(token.encode(errors="replace")).hexdigest()[:32]
        now = time.monotonic()
        with cls.lock:
            cls.last_seen[key] = now
            if len(cls.last_seen) > SESSIONS_MAX:
                cls._prune(now)

    @classmethod
    def active(cls):
        with cls.lock:
            cls._prune(time.monotonic())
            return len(cls.last_seen)

    @classmethod
    def _prune(cls, now):
        for key in [k for k, t in cls.last_seen.items() if now - t > SESSION_WINDOW]:
            del cls.last_seen[key]
        while len(cls.last_seen) > SESSIONS_MAX:  # still too many: the oldest go
            del cls.last_seen[min(cls.last_seen, key=cls.last_seen.get)]


def _readable(sock):
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return False


# --- endpoints ---------------------------------------------------------------
def health(req):
    if BROKEN == "health":
        return 503, {
            "status": "unhealthy",
            "error": "broken release (BROKEN=health): health check always fails",
            "version": VERSION,
            "instance": INSTANCE,
        }
    # The three checks run in parallel, bounded as a whole by HEALTH_TIMEOUT
    # (a paused database or an unresolvable host must not hang the answer).
    checks = {
        "postgres": HEALTH_POOL.submit(DB.run, lambda cur: (cur.execute("SELECT 1"), cur.fetchone())[1]),
        "redis-cache": HEALTH_POOL.submit(common.redis_call, CACHE, "PING"),
        "redis-queue": HEALTH_POOL.submit(common.redis_call, QUEUE, "PING"),
    }
    deadline = time.monotonic() + HEALTH_TIMEOUT
    for step, fut in checks.items():
        try:
            fut.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            err = f"{step}: no answer within {HEALTH_TIMEOUT:g} s"
        except Exception as exc:  # noqa: BLE001
            err = f"{step}: {safe_error(exc)}"
        else:
            continue
        return 503, {"status": "unhealthy", "error": err, "version": VERSION, "instance": INSTANCE}
    return 200, {
        "status": "healthy",
        "version": VERSION,
        "instance": INSTANCE,
        "uptime": round(time.monotonic() - STARTED, 3),
        "timestamp": now_iso(),
    }


def _row(cur_row):
    return {"id": cur_row[0], "name": cur_row[1], "created_at": cur_row[2].isoformat()}


def list_items(req):
    try:
        limit = max(1, min(1000, int(req.query.get("limit", ["100"])[0])))
    except ValueError:
        raise HttpError(400, "limit must be an integer") from None

    def q(cur):
        cur.execute("SELECT id, name, created_at FROM items ORDER BY id DESC LIMIT %s", (limit,))
        return [_row(r) for r in cur.fetchall()]

    try:
        rows = DB.run(q)
    except Exception as exc:  # noqa: BLE001
        return 503, {"error": safe_error(exc)}
    return 200, {"items": rows, "count": len(rows)}


def create_item(req):
    name = req.json_body().get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 200:
        raise HttpError(400, '"name" must be a string of 1 to 200 characters')

    def q(cur):
        cur.execute("INSERT INTO items (name) VALUES (%s) RETURNING id, name, created_at", (name,))
        return _row(cur.fetchone())

    try:
        row = DB.run(q, retry=False)
    except Exception as exc:  # noqa: BLE001
        return 503, {"error": safe_error(exc)}
    return 201, row


def _new_session():
    token = "fake-" + secrets.token_hex(16)
    Sessions.seen(token)
    return token


def login(req):
    req.json_body()  # validates the JSON if any; credentials are not checked
    return 200, {"token": _new_session(), "token_type": "Bearer", "expires_in": 3600}


def register(req):
    """A new user (connect_user_registrations_total); the password, if any, is not stored."""
    body = req.json_body()
    email, name = body.get("email"), body.get("name")
    if not isinstance(email, str) or len(email) > 254 or not EMAIL.fullmatch(email.strip()):
        raise HttpError(400, '"email" must be an e-mail address')
    if name is not None and (not isinstance(name, str) or len(name) > 200):
        raise HttpError(400, '"name" must be a string of at most 200 characters')
    email = email.strip().lower()

    def q(cur):
        cur.execute(
            "INSERT INTO users (email, name) VALUES (%s, %s) ON CONFLICT (email) DO NOTHING RETURNING id, created_at",
            (email, name),
        )
        return cur.fetchone()

    try:
        row = DB.run(q, retry=False)
    except Exception as exc:  # noqa: BLE001
        return 503, {"error": safe_error(exc)}
    if row is None:
        return 409, {"error": f"{email} is already registered"}
    return 201, {"id": row[0], "email": email, "name": name, "created_at": row[1].isoformat(), "token": _new_session()}


def _optional_int(body, key, lo, hi, default=None):
    val = body.get(key, default)
    if val is None:
        return None
    if isinstance(val, bool) or not isinstance(val, int) or not lo <= val <= hi:
        raise HttpError(400, f'"{key}" must be an integer from {lo} to {hi}')
    return val


def create_matches(req):
    """Funding matches generated for a user (connect_funding_matches_generated_total): "count"
    rows (default 1, at most 100) for "program", each with a score."""
    body = req.json_body()
    user_id = _optional_int(body, "user_id", 1, 2**63 - 1)
    count = _optional_int(body, "count", 1, 100, 1)
    program = body.get("program", "default")
    if not isinstance(program, str) or not 1 <= len(program) <= 200:
        raise HttpError(400, '"program" must be a string of 1 to 200 characters')

    def q(cur):
        cur.execute(
            "INSERT INTO matches (user_id, program, score) SELECT %s::bigint, %s::text, round(random()::numeric, 3)::real "
            "FROM generate_series(1, %s) RETURNING id",
            (user_id, program, count),
        )
        return [r[0] for r in cur.fetchall()]

    try:
        ids = DB.run(q, retry=False)
    except psycopg2.errors.ForeignKeyViolation:
        return 404, {"error": f"no user {user_id}"}
    except Exception as exc:  # noqa: BLE001
        return 503, {"error": safe_error(exc)}
    return 201, {"ids": ids, "count": len(ids), "user_id": user_id, "program": program}


def create_subscription(req):
    body = req.json_body()
    org, plan = body.get("org_name"), body.get("plan", "free")
    if not isinstance(org, str) or not 1 <= len(org) <= 200:
        raise HttpError(400, '"org_name" must be a string of 1 to 200 characters')
    if plan not in ("free", "pro"):
        raise HttpError(400, '"plan" must be "free" or "pro"')

    def q(cur):
        cur.execute("INSERT INTO subscriptions (org_name, plan) VALUES (%s, %s) RETURNING id, started_at", (org, plan))
        return cur.fetchone()

    try:
        row = DB.run(q, retry=False)
    except Exception as exc:  # noqa: BLE001
        return 503, {"error": safe_error(exc)}
    return 201, {"id": row[0], "org_name": org, "plan": plan, "started_at": row[1].isoformat()}


def upgrade_subscription(req, sub_id):
    """Free to Pro: a conversion (connect_subscription_conversions_total), counted once per subscription."""

    def q(cur):
        cur.execute(
            "UPDATE subscriptions SET plan = 'pro', converted_at = coalesce(converted_at, now()) "
            "WHERE id = %s AND plan = 'free' RETURNING id, org_name, converted_at",
            (int(sub_id),),
        )
        row = cur.fetchone()
        if row is None:
            cur.execute("SELECT plan FROM subscriptions WHERE id = %s", (int(sub_id),))
            return None, cur.fetchone()
        return row, None

    try:
        row, other = DB.run(q, retry=False)
    except Exception as exc:  # noqa: BLE001
        return 503, {"error": safe_error(exc)}
    if row is None:
        if other is None:
            return 404, {"error": f"no subscription {sub_id}"}
        return 409, {"error": f"subscription {sub_id} is on plan {other[0]!r}: only a free one converts to pro"}
    return 200, {"id": row[0], "org_name": row[1], "plan": "pro", "converted_at": row[2].isoformat()}


# --- GET /metrics ----------------------------------------------------------------
class Totals:
    """The database's totals, shared by every instance; cached per process."""

    lock = threading.Lock()
    values = None
    at = 0.0


TOTALS_QUERY = """
SELECT (SELECT count(*) FROM users),
       (SELECT count(*) FROM matches),
       (SELECT count(*) FILTER (WHERE result = 'success') FROM scrape_results),
       (SELECT count(*) FILTER (WHERE result = 'failure') FROM scrape_results),
       (SELECT count(*) FROM subscriptions WHERE converted_at IS NOT NULL)"""


def _totals():
    with Totals.lock:
        if Totals.values is None or time.monotonic() - Totals.at >= METRICS_CACHE_SECONDS:
            query = METRICS_POOL.submit(DB.run, lambda cur: (cur.execute(TOTALS_QUERY), cur.fetchone())[1])
            Totals.values = query.result(timeout=METRICS_TIMEOUT)
            Totals.at = time.monotonic()
        return tuple(Totals.values)


def metrics(req):
    # For Prometheus on the backend network only: a request nginx forwarded is refused.
    if req.headers.get("X-Forwarded-For") or req.headers.get("X-Real-IP"):
        raise HttpError(404, "not found")
    try:
        users, matches, scraped, failed, conversions = _totals()
    except FutureTimeout:
        return 503, f"database: no answer within {METRICS_TIMEOUT:g} s\n", "text/plain; charset=utf-8"
    except Exception as exc:  # noqa: BLE001
        return 503, f"database: {safe_error(exc)}\n", "text/plain; charset=utf-8"
    lines = []
    for name, mtype, text, samples in (
        ("connect_user_registrations_total", "counter", "Users registered (rows of users).", [("", users)]),
        ("connect_funding_matches_generated_total", "counter", "Funding matches generated (rows of matches).", [("", matches)]),
        (
            "connect_scraping_runs_total",
            "counter",
            "Scraper jobs finished, by result (failure: after all its retries).",
            [('{result="success"}', scraped), ('{result="failure"}', failed)],
        ),
        (
            "connect_subscription_conversions_total",
            "counter",
            "Subscriptions converted from free to pro.",
            [("", conversions)],
        ),
        (
            "connect_active_sessions",
            "gauge",
            f"Sessions (bearer tokens) this instance issued or was sent in the last {SESSION_WINDOW} s.",
            [("", Sessions.active())],
        ),
    ):
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {mtype}"]
        lines += [f"{name}{labels} {int(val)}" for labels, val in samples]
    return 200, "\n".join(lines) + "\n", METRICS_CONTENT_TYPE


def slow(req):
    try:
        ms = int(req.query.get("ms", ["1000"])[0])
    except ValueError:
        raise HttpError(400, "ms must be an integer") from None
    ms = max(0, min(SLOW_MAX_MS, ms))
    time.sleep(ms / 1000.0)
    return 200, {"slept_ms": ms, "instance": INSTANCE, "version": VERSION}


def static(req, rel):
    root = os.path.realpath(os.path.join(STATIC_ROOT, "_next", "static"))
    path = os.path.realpath(os.path.join(root, rel))
    if not path.startswith(root + os.sep) or not os.path.isfile(path):
        raise HttpError(404, "not found")
    with open(path, "rb") as fh:
        data = fh.read()
    ctype = (
        "application/javascript"
        if path.endswith(".js")  # as Next.js
        else mimetypes.guess_type(path)[0] or "application/octet-stream"
    )
    if ctype.startswith("text/") or ctype.endswith("javascript"):
        ctype += "; charset=utf-8"
    return 200, data, ctype, {"Cache-Control": "public, max-age=31536000, immutable"}


def enqueue(req):
    body = req.json_body()
    job_id = uuid.uuid4().hex
    url = body.get("url") or f"https://example.invalid/notices/{job_id}"
    job = {
        "id": job_id,
        "url": url,
        "agency": body.get("agency", "default"),
        "fail": int(body.get("fail", 0) or 0),
        "enqueued_at": now_iso(),
        "enqueued_by": INSTANCE,
    }
    try:
        depth = common.redis_call(QUEUE, "LPUSH", JOBS_KEY, json.dumps(job))
    except Exception as exc:  # noqa: BLE001
        return 503, {"error": safe_error(exc)}
    return 202, {"id": job_id, "url": url, "queue": JOBS_KEY, "depth": depth}


def job_result(req, job_id):
    def q(cur):
        cur.execute(
            "SELECT job_id, url, worker, attempts, scraped_at, result FROM scrape_results WHERE job_id = %s ORDER BY id DESC LIMIT 1",
            (job_id,),
        )
        return cur.fetchone()

    try:
        row = DB.run(q)
    except Exception as exc:  # noqa: BLE001
        return 503, {"error": safe_error(exc)}
    if row is None:
        return 404, {"id": job_id, "status": "pending"}
    status = "done" if row[5] == "success" else "failed"  # failed: every attempt failed
    return 200, {"id": row[0], "url": row[1], "worker": row[2], "attempts": row[3], "scraped_at": row[4].isoformat(), "status": status}


def _aes():
    if AES is None:
        raise HttpError(503, "ENCRYPTION_KEY is not set")
    return AES


def brn_encrypt(req):
    """Encrypt a Korean business registration number (NNN-NN-NNNNN)."""
    brn = req.json_body().get("brn")
    if not isinstance(brn, str) or not re.fullmatch(r"\d{3}-?\d{2}-?\d{5}", brn):
        raise HttpError(400, '"brn" must look like 123-45-67890')
    digits = brn.replace("-", "")
    nonce = os.urandom(12)
    blob = nonce + _aes().encrypt(nonce, digits.encode(), BRN_AAD)
    return 200, {"ciphertext": base64.b64encode(blob).decode(), "algorithm": "AES-256-GCM", "masked": f"{digits[:3]}-{digits[3:5]}-*****"}


def brn_decrypt(req):
    ct = req.json_body().get("ciphertext")
    try:
        blob = base64.b64decode(ct or "", validate=True)
        digits = _aes().decrypt(blob[:12], blob[12:], BRN_AAD).decode()
    except HttpError:
        raise
    except Exception:  # noqa: BLE001 (wrong key, tampered or malformed)
        raise HttpError(400, "cannot decrypt (wrong ENCRYPTION_KEY or corrupted ciphertext)") from None
    return 200, {"brn": f"{digits[:3]}-{digits[3:5]}-{digits[5:]}"}


def _upload_path(name):
    if not UPLOAD_DIR:
        raise HttpError(503, "uploads are not configured (UPLOAD_DIR is unset)")
    if not UPLOAD_NAME.fullmatch(name):
        raise HttpError(400, "an upload's name is 1-100 letters, digits, '.', '_' or '-', not starting with '.'")
    return os.path.join(UPLOAD_DIR, name)


def put_upload(req, name):
    path = _upload_path(name)
    tmp = f"{path}.{INSTANCE}.{secrets.token_hex(4)}.part"
    with open(tmp, "wb") as fh:
        fh.write(req.body)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return 201, {"name": name, "bytes": len(req.body), "sha256": hashlib.sha256(req.body).hexdigest(), "instance": INSTANCE}


def get_upload(req, name):
    path = _upload_path(name)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise HttpError(404, f"no upload named {name}") from None
    return 200, data, "application/octet-stream"


def index(req):
    return (
        200,
        (
            f"<!doctype html><title>Connect</title><h1>Connect test app</h1>"
            f'<p>{VERSION} on {INSTANCE}</p><script src="/_next/static/app.js"></script>\n'
        ),
        "text/html; charset=utf-8",
    )


ROUTES = [
    (("GET",), re.compile(r"/"), index),
    (("GET",), re.compile(r"/api/health"), health),
    (("GET",), re.compile(r"/api/items"), list_items),
    (("POST",), re.compile(r"/api/items"), create_item),
    (("POST",), re.compile(r"/api/auth/login"), login),
    (("GET",), re.compile(r"/api/slow"), slow),
    (("POST",), re.compile(r"/api/jobs"), enqueue),
    (("GET",), re.compile(r"/api/jobs/([0-9a-f]{32})"), job_result),
    (("POST",), re.compile(r"/api/crypto/brn"), brn_encrypt),
    (("POST",), re.compile(r"/api/crypto/brn/decrypt"), brn_decrypt),
    (("GET",), re.compile(r"/_next/static/(.+)"), static),
    (("PUT",), re.compile(r"/api/uploads/([^/]+)"), put_upload),
    (("GET",), re.compile(r"/api/uploads/([^/]+)"), get_upload),
    (("POST",), re.compile(r"/api/register"), register),
    (("POST",), re.compile(r"/api/matches"), create_matches),
    (("POST",), re.compile(r"/api/subscriptions"), create_subscription),
    (("POST",), re.compile(r"/api/subscriptions/([0-9]{1,18})/upgrade"), upgrade_subscription),
    (("GET",), re.compile(r"/metrics"), metrics),
]


def _close_idle():
    """Close idle keep-alive connections (caller holds Drain.lock)."""
    for h in list(Drain.idle):
        if not _readable(h.connection):
            try:
                h.connection.shutdown(socket.SHUT_RD)
            except OSError:
                pass


def drain_and_exit(server, signame):
    log("server", f"{signame} received: draining", in_flight=Drain.busy, timeout_s=SHUTDOWN_TIMEOUT)
    with Drain.lock:
        Drain.draining = True
    server.shutdown()  # the accept loop stops
    server.socket.close()  # new connections are refused from here on
    # In-flight requests finish; every response now says "Connection: close".
    # Idle keep-alive connections stay open for a short grace period, so that a
    # request a proxy sends on one gets answered (and closes it cleanly)
    # instead of meeting a reset; whatever is still idle after that is closed.
    start = time.monotonic()
    deadline, grace_end = start + SHUTDOWN_TIMEOUT, start + min(IDLE_GRACE, SHUTDOWN_TIMEOUT)
    with Drain.lock:
        while time.monotonic() < deadline:
            if Drain.busy == 0 and (not Drain.idle or time.monotonic() >= grace_end):
                break
            Drain.idle_changed.wait(timeout=0.05)
        _close_idle()
        left = Drain.busy
    if left:
        log("server", "drain timeout: exiting with requests still in flight", in_flight=left)
    else:
        log("server", "drained: all in-flight requests finished; exiting", ms=int((time.monotonic() - start) * 1000))
    if DB is not None:
        DB.close()
    sys.stdout.flush()
    os._exit(0)


def main():
    global DB, CACHE, QUEUE, AES
    raw_key = os.environ.get("ENCRYPTION_KEY", "")
    if raw_key:
        try:
            AES = AESGCM(parse_key(raw_key))
        except ValueError as exc:
            log("server", f"fatal: {exc}")
            return 1
    else:
        log("server", "warning: ENCRYPTION_KEY is not set; /api/crypto/* answers 503")
    try:
        DB = common.PgPool(common.require_env("DATABASE_URL"), size=common.env_int("DB_POOL_SIZE", 5, 1, 100))
        CACHE = common.redis_client(common.require_env("REDIS_CACHE_URL"))
        QUEUE = common.redis_client(common.require_env("REDIS_QUEUE_URL"))
    except (RuntimeError, ValueError) as exc:
        log("server", f"fatal: {exc}")
        return 1

    stop = threading.Event()
    got = []

    def on_signal(signum, _frame):
        got.append(signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    server = Server((HOST, PORT), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    log(
        "server",
        f"listening on {HOST}:{PORT}",
        version=VERSION,
        node_env=common.NODE_ENV,
        broken=BROKEN or "no",
        keep_alive_timeout_ms=int(KEEP_ALIVE_TIMEOUT * 1000),
    )
    while not stop.wait(1):
        pass
    drain_and_exit(server, got[0] if got else "signal")
    return 0


if __name__ == "__main__":
    sys.exit(main())
