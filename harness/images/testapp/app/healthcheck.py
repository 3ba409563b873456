"""Connect test app: container healthcheck without curl.

python3 /app/healthcheck.py          exit 0 if GET http://127.0.0.1:$PORT/api/health
                                     answers 200 within 4.5 s, else 1
python3 /app/healthcheck.py scraper  exit 0 if the scraper's workers reached
                                     Redis within the last 30 s (/tmp/scraper.alive)
Test stand-in only; never used in production."""

import http.client
import os
import sys
import time


def app():
    port = int(os.environ.get("PORT") or 3001)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=4.5)
        conn.request("GET", "/api/health", headers={"Connection": "close"})
        resp = conn.getresponse()
        body = resp.read(500).decode(errors="replace")
    except OSError as exc:
        print(f"unhealthy: {exc}")
        return 1
    print(resp.status, body)
    return 0 if resp.status == 200 else 1


def scraper():
    try:
        age = time.time() - os.stat("/tmp/scraper.alive").st_mtime
    except OSError:
        print("unhealthy: /tmp/scraper.alive missing")
        return 1
    print(f"scraper alive file age {age:.1f}s")
    return 0 if age < 30 else 1


if __name__ == "__main__":
    sys.exit(scraper() if sys.argv[1:2] == ["scraper"] else app())
