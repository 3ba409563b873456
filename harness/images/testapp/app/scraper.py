"""Connect test app: the scraper worker (same image as the app).

python3 /app/scraper.py  -- BRPOPs jobs from the Redis list connect:jobs
(REDIS_QUEUE_URL) and records each in table scrape_results (DATABASE_URL).
The "scrape" is simulated: no external URL is ever fetched.
Settings: SCRAPER_CONCURRENCY (2), SCRAPER_RATE_LIMIT_PER_MINUTE (10, per
agency), SCRAPER_RETRIES (3 attempts, exponential backoff), SCRAPER_SCHEDULE
("09:00,15:00", KST; only logged). A job {"fail": N} fails its first N
attempts; a job that fails every attempt is recorded with result 'failure' (the
others with 'success') and goes to connect:jobs:failed.
On SIGTERM/SIGINT: takes no new job, finishes the current ones, exits 0.
Touches /tmp/scraper.alive every few seconds (healthcheck.py scraper).
Test stand-in only; never used in production."""

import collections
import json
import os
import random
import re
import signal
import sys
import threading
import time

import common
from common import INSTANCE, log

JOBS_KEY = "connect:jobs"
FAILED_KEY = "connect:jobs:failed"
ALIVE_FILE = "/tmp/scraper.alive"
POP_TIMEOUT = 2

CONCURRENCY = common.env_int("SCRAPER_CONCURRENCY", 2, 1, 32)
RATE_PER_MIN = common.env_int("SCRAPER_RATE_LIMIT_PER_MINUTE", 10, 1)
RETRIES = common.env_int("SCRAPER_RETRIES", 3, 1, 10)
SCHEDULE = os.environ.get("SCRAPER_SCHEDULE", "09:00,15:00")
BACKOFF_BASE = common.env_int("SCRAPER_BACKOFF_MS", 500, 0) / 1000.0

stop = threading.Event()
last_ok = [time.monotonic()]  # last time a worker talked to Redis successfully


class RateLimiter:
    """At most RATE_PER_MIN job starts per agency in any 60 s window."""

    def __init__(self, per_minute):
        self.per_minute = per_minute
        self.starts = collections.defaultdict(collections.deque)
        self.lock = threading.Lock()

    def wait(self, agency):
        while not stop.is_set():
            with self.lock:
                q, now = self.starts[agency], time.monotonic()
                while q and now - q[0] >= 60:
                    q.popleft()
                if len(q) < self.per_minute:
                    q.append(now)
                    return True
                delay = 60 - (now - q[0])
            stop.wait(min(delay, 1.0))
        return False


def simulate_scrape(job, attempt):
    time.sleep(random.uniform(0.1, 0.3))
    if attempt <= int(job.get("fail") or 0):
        raise RuntimeError(f"simulated failure on attempt {attempt}")


def record(db, job, worker, attempts, result="success"):
    def q(cur):
        cur.execute(
            "INSERT INTO scrape_results (job_id, url, worker, attempts, result) VALUES (%s, %s, %s, %s, %s)",
            (str(job["id"]), str(job.get("url", "")), worker, attempts, result),
        )

    db.run(q, retry=False)


def process(db, queue, limiter, raw, worker):
    try:
        job = json.loads(raw)
        if not isinstance(job, dict) or "id" not in job:
            raise ValueError("job must be a JSON object with an id")
    except ValueError as exc:
        log("scraper", f"dropping malformed job: {exc}", worker=worker)
        return
    agency = str(job.get("agency") or "default")
    for attempt in range(1, RETRIES + 1):
        if not limiter.wait(agency):
            # Shutting down before the job could start: put it back.
            common.redis_call(queue, "RPUSH", JOBS_KEY, raw)
            log("scraper", "shutdown: job returned to the queue", job=job["id"])
            return
        try:
            simulate_scrape(job, attempt)
            record(db, job, worker, attempt)
            log("scraper", "job done", job=job["id"], url=job.get("url"), attempts=attempt, worker=worker)
            return
        except Exception as exc:  # noqa: BLE001
            log("scraper", f"attempt {attempt}/{RETRIES} failed: {common.safe_error(exc)}", job=job["id"])
            if attempt < RETRIES:
                time.sleep(BACKOFF_BASE * (2 ** (attempt - 1)))
    try:
        record(db, job, worker, RETRIES, "failure")  # connect_scraping_runs_total{result="failure"}
    except Exception as exc:  # noqa: BLE001 (the database is why it failed, maybe: still park the job)
        log("scraper", f"cannot record the failure: {common.safe_error(exc)}", job=job["id"])
    common.redis_call(queue, "LPUSH", FAILED_KEY, raw)
    log("scraper", "job failed after all attempts", job=job["id"], attempts=RETRIES)


def worker_loop(n, db, queue, limiter):
    worker = f"{INSTANCE}/{n}"
    while not stop.is_set():
        try:
            item = queue.brpop(JOBS_KEY, timeout=POP_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 (Redis down: wait and retry)
            log("scraper", f"queue error: {common.safe_error(exc)}", worker=worker)
            stop.wait(2)
            continue
        last_ok[0] = time.monotonic()
        if item is None:
            continue
        try:
            process(db, queue, limiter, item[1], worker)
        except Exception as exc:  # noqa: BLE001
            log("scraper", f"error: {common.safe_error(exc)}", worker=worker)


def main():
    bad = [s for s in SCHEDULE.split(",") if not re.fullmatch(r"\s*([01]\d|2[0-3]):[0-5]\d\s*", s)]
    if bad:
        log("scraper", f"warning: SCRAPER_SCHEDULE has invalid entries {bad}; expected HH:MM[,HH:MM...]")
    try:
        db = common.PgPool(common.require_env("DATABASE_URL"), size=CONCURRENCY)
        # BRPOP blocks for POP_TIMEOUT s: the socket timeout must be longer.
        queue = common.redis.Redis.from_url(
            common.require_env("REDIS_QUEUE_URL"), socket_timeout=POP_TIMEOUT + 5, socket_connect_timeout=3, decode_responses=True
        )
    except RuntimeError as exc:
        log("scraper", f"fatal: {exc}")
        return 1

    def on_signal(signum, _frame):
        log("scraper", f"{signal.Signals(signum).name} received: finishing current jobs")
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    log(
        "scraper",
        "started",
        version=common.VERSION,
        concurrency=CONCURRENCY,
        rate_limit_per_minute=RATE_PER_MIN,
        retries=RETRIES,
        schedule_kst=SCHEDULE.replace(" ", ""),
        queue=JOBS_KEY,
    )
    limiter = RateLimiter(RATE_PER_MIN)
    threads = [threading.Thread(target=worker_loop, args=(n, db, queue, limiter), daemon=True) for n in range(1, CONCURRENCY + 1)]
    for t in threads:
        t.start()
    while True:
        # Alive = the workers reached Redis recently (healthcheck.py scraper).
        if time.monotonic() - last_ok[0] < 3 * POP_TIMEOUT + 5:
            try:
                with open(ALIVE_FILE, "w", encoding="utf-8") as fh:
                    fh.write(common.now_iso() + "\n")
            except OSError:
                pass
        if stop.wait(2):
            break
    for t in threads:
        t.join(timeout=60)
    db.close()
    log("scraper", "stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
