"""Shared pieces of the Connect test app: settings from the environment, the
build facts baked into the image, logging to stdout, a small PostgreSQL
connection pool that is safe behind PgBouncer in transaction mode, and Redis
clients. Test stand-in only; never used in production."""

import json
import os
import socket
import sys
import threading
from datetime import datetime, timezone

import psycopg2
import redis

APP_DIR = os.path.dirname(os.path.abspath(__file__))


def _build_facts():
    try:
        with open(os.path.join(APP_DIR, "build.json"), encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {"version": "v1", "broken": ""}


BUILD = _build_facts()
# APP_VERSION from the environment wins; the baked version is the fallback.
VERSION = os.environ.get("APP_VERSION") or BUILD.get("version") or "v1"
BROKEN = BUILD.get("broken") or ""
INSTANCE = os.environ.get("INSTANCE") or socket.gethostname()
NODE_ENV = os.environ.get("NODE_ENV", "production")


# LOG_DIR (optional): also append every line to $LOG_DIR/<component>.log,
# for hosts that keep app logs in files (the app role mounts
# /opt/connect/logs/<instance> there). Best effort: a full or read-only
# directory never stops the app.
LOG_DIR = os.environ.get("LOG_DIR", "")
_LOG_LOCK = threading.Lock()


def log(component, msg, **fields):
    """One line per event on stdout: time, component, instance, message, k=v."""
    extra = "".join(f" {k}={v}" for k, v in fields.items())
    line = f"{now_iso()} [{component}] {INSTANCE} {msg}{extra}\n"
    sys.stdout.write(line)
    sys.stdout.flush()
    if LOG_DIR:
        try:
            with _LOG_LOCK, open(os.path.join(LOG_DIR, f"{component}.log"), "a", encoding="utf-8") as fh:
                fh.write(line)
        except OSError:
            pass


def now_iso():
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def env_int(name, default, lo=None, hi=None):
    raw = os.environ.get(name, "")
    try:
        val = int(raw) if raw.strip() else default
    except ValueError:
        log("config", f"{name}={raw!r} is not an integer; using {default}")
        val = default
    if lo is not None:
        val = max(lo, val)
    if hi is not None:
        val = min(hi, val)
    return val


def require_env(name):
    val = os.environ.get(name, "")
    if not val:
        raise RuntimeError(f"{name} is not set")
    return val


# --- PostgreSQL --------------------------------------------------------------
# Every unit of work is one transaction (commit or rollback before the
# connection goes back), nothing is SET per session and psycopg2 never uses
# server-side prepared statements: what PgBouncer's transaction pooling needs.
class PgPool:
    def __init__(self, dsn, size=5, connect_timeout=3):
        self.dsn = dsn
        self.connect_timeout = connect_timeout
        self._idle = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(size)

    def _connect(self):
        return psycopg2.connect(self.dsn, connect_timeout=self.connect_timeout, application_name=f"connect-testapp-{INSTANCE}")

    def run(self, fn, retry=True):
        """Run fn(cursor) in one transaction and return its result. A broken
        connection (e.g. PgBouncer or PostgreSQL restarted) is dropped and the
        call is retried once on a fresh one."""
        if not self._slots.acquire(timeout=10):
            raise RuntimeError("database pool exhausted")
        try:
            for attempt in (1, 2):
                with self._lock:
                    conn = self._idle.pop() if self._idle else None
                fresh = conn is None
                if fresh:
                    conn = self._connect()
                try:
                    with conn.cursor() as cur:
                        result = fn(cur)
                    conn.commit()
                except (psycopg2.OperationalError, psycopg2.InterfaceError):
                    _close(conn)
                    if attempt == 2 or fresh or not retry:
                        raise
                    continue
                except BaseException:
                    try:
                        conn.rollback()
                    except psycopg2.Error:
                        _close(conn)
                        raise
                    self._give_back(conn)
                    raise
                self._give_back(conn)
                return result
        finally:
            self._slots.release()

    def _give_back(self, conn):
        if conn.closed:
            return
        with self._lock:
            self._idle.append(conn)

    def close(self):
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            _close(conn)


def _close(conn):
    try:
        conn.close()
    except psycopg2.Error:
        pass


def redis_client(url):
    return redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3, health_check_interval=15, decode_responses=True)


def safe_error(exc):
    """A short, password-free description of an exception for JSON answers."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}"[:300]


def redis_call(client, *args):
    """One Redis command, retried once on a dropped connection (after a
    Redis restart the pool may still hold the old socket)."""
    try:
        return client.execute_command(*args)
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        return client.execute_command(*args)
