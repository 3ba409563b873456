"""The edge and app tier through the real chain: 127.0.0.1 -> published port
-> nginx -> app1/app2 -> PgBouncer -> PostgreSQL, Redis cache and queue.
(Issue 5.) Rate-limit bursts come last in this file: they spend the
client's allowance."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import time
import uuid
from datetime import datetime
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from conftest import (
    APPS,
    CONTAINER,
    EDGE_HTTP,
    EDGE_HTTPS,
    PORT,
    UPSTREAM_FILE,
    edge,
    harness_vars,
    loadgen,
    loadgen_result,
    role_defaults,
    wait_healthy,
)

# This part changes the server; after a failed test a converge puts it back (conftest).
RESTORE = ("--tags", "stack")

APP3 = f"{CONTAINER['app']}3"


def instances_serving(expected: set, seconds: float = 20) -> set:
    """The instances that answer through nginx, asked until all of
    `expected` have answered or `seconds` have passed. Under concurrent load
    (the load generator shares nginx's round robin) a fixed number of
    requests can miss one instance by chance; a longer look cannot."""
    seen: set = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen |= set(instances_seen(6))
        if seen >= expected:
            break
        time.sleep(0.2)
    return seen


def instances_seen(n: int = 20, path: str = "/api/health") -> dict:
    seen = {}
    for _attempt in range(n):
        ans = edge(path)
        assert ans.status == 200, ans
        seen[ans.headers["x-app-instance"]] = ans.headers["x-app-version"]
    return seen


def test_health_answers_through_the_whole_chain(host):
    ans = edge("/api/health")
    assert ans.status == 200, ans
    body = ans.json()
    # The app's health checks PostgreSQL through PgBouncer and both Redis.
    assert body["status"] == "healthy"
    assert body["version"] == "v1"
    assert ans.headers["content-type"].startswith("application/json")


def test_both_instances_serve_round_robin(host):
    seen = instances_seen()
    assert set(seen) == {"app1", "app2"}, seen


def test_database_write_then_read_through_pgbouncer(host):
    name = f"edge-{uuid.uuid4().hex[:8]}"
    created = edge("/api/items", "POST", {"name": name})
    assert created.status in (200, 201), created
    listed = edge("/api/items")
    assert listed.status == 200
    assert name in listed.body.decode()


def test_app_containers_have_the_seed_healthcheck_and_the_plan_limits(host):
    plan = harness_vars()["compose_stack_resources"]
    for container in APPS:
        cfg = json.loads(host.check_output(f"docker inspect {container}"))[0]
        hc = cfg["Config"]["Healthcheck"]
        assert "/api/health" in " ".join(hc["Test"])
        # Seed §5.2: interval 10 s, timeout 5 s, 3 retries, start period 30 s.
        assert (hc["Interval"], hc["Timeout"], hc["Retries"], hc["StartPeriod"]) == (10e9, 5e9, 3, 30e9)
        assert cfg["HostConfig"]["NanoCpus"] == int(float(plan["app"]["cpus"]) * 1e9)
        assert cfg["Config"]["User"] == "1001:1001"
        assert cfg["HostConfig"]["ReadonlyRootfs"] is True
        # The app drains for 30 s on SIGTERM; Docker must wait longer.
        assert cfg["Config"]["StopTimeout"] >= 35
        assert set(cfg["NetworkSettings"]["Networks"]) == {"frontend", "backend"}
    for container, key in ((CONTAINER["nginx"], "nginx"), (CONTAINER["scraper"], "scraper")):
        cfg = json.loads(host.check_output(f"docker inspect {container}"))[0]
        assert cfg["HostConfig"]["NanoCpus"] == int(float(plan[key]["cpus"]) * 1e9), container
    nginx = json.loads(host.check_output(f"docker inspect {CONTAINER['nginx']}"))[0]
    assert set(nginx["NetworkSettings"]["Networks"]) == {"frontend"}, "nginx must not reach the data tier"


def test_env_file_is_private_and_points_at_pgbouncer(host):
    env = host.file("/opt/connect/.env.production")
    assert (env.user, env.group, env.mode) == ("connect", "connect", 0o600)
    text = host.check_output("cat /opt/connect/.env.production")
    values = dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert values["DATABASE_URL"].endswith("@pgbouncer:6432/connect")
    assert values["REDIS_CACHE_URL"].endswith("@redis-cache:6379/0")
    assert values["REDIS_QUEUE_URL"].endswith("@redis-queue:6380/0")
    assert values["NODE_ENV"] == "production"
    assert len(bytes.fromhex(values["ENCRYPTION_KEY"])) == 32
    # The BRN key is the same for every instance: one encrypts, another decrypts.
    assert values["ENCRYPTION_KEY"] == host.check_output("cat /opt/connect/secrets/app_encryption_key")


def test_brn_encrypted_by_one_instance_is_read_by_the_other(host):
    brn = "123-45-67890"
    by_instance = {}
    for _attempt in range(10):
        ans = edge("/api/crypto/brn", "POST", {"brn": brn})
        assert ans.status == 200, ans
        by_instance.setdefault(ans.headers["x-app-instance"], ans.json())
    assert len(by_instance) == 2
    for ciphertext in by_instance.values():
        for _attempt in range(4):
            ans = edge("/api/crypto/brn/decrypt", "POST", {"ciphertext": ciphertext["ciphertext"]})
            assert ans.status == 200 and ans.json()["brn"] == brn, ans


def test_app_logs_land_under_opt_connect_logs(host):
    edge("/api/health")
    for n in (1, 2):
        log = host.file(f"/opt/connect/logs/app{n}/http.log")
        assert log.exists and log.user == "connect"
        assert "/api/health" in log.content_string
    assert host.file("/etc/logrotate.d/connect-app").contains("copytruncate")


def test_tls_refuses_1_0_and_1_1_and_accepts_1_2_and_1_3(host):
    url = urlsplit(EDGE_HTTPS)

    def handshake(version):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        # Let the client offer old versions, so a refusal is the server's.
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ctx.maximum_version = version
        with socket.create_connection((url.hostname, url.port), timeout=5) as raw, ctx.wrap_socket(raw) as tls:
            return tls.version()

    assert handshake(ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    assert handshake(ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
    for old in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        with pytest.raises(ssl.SSLError) as refused:
            handshake(old)
        assert "protocol version" in str(refused.value).lower() or "unsupported protocol" in str(refused.value).lower(), refused.value


def test_tls_1_2_uses_only_forward_secret_aead_suites(host):
    url = urlsplit(EDGE_HTTPS)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("AES128-SHA:AES256-SHA:@SECLEVEL=0")  # no ECDHE, no GCM
    with pytest.raises(ssl.SSLError), socket.create_connection((url.hostname, url.port), timeout=5) as raw:
        ctx.wrap_socket(raw)


@pytest.mark.parametrize(
    ("group", "accepted"), [("X25519", True), ("prime256v1", True), ("secp384r1", True), ("X448", False), ("secp521r1", False)]
)
def test_tls_key_exchange_is_mozillas_intermediate_list(host, group, accepted):
    url = urlsplit(EDGE_HTTPS)
    done = subprocess.run(
        ["openssl", "s_client", "-connect", f"{url.hostname}:{url.port}", "-groups", group, "-brief"],
        input=b"",
        capture_output=True,
        timeout=15,
        check=False,
    )
    assert (done.returncode == 0) is accepted, done.stderr.decode(errors="replace")[-400:]


def test_the_certificate_lives_at_most_366_days(host):
    url = urlsplit(EDGE_HTTPS)
    pem = ssl.get_server_certificate((url.hostname, url.port))
    der = ssl.PEM_cert_to_DER_cert(pem)
    dates = subprocess.run(
        ["openssl", "x509", "-inform", "DER", "-noout", "-startdate", "-enddate"], input=der, capture_output=True, check=True
    )
    fields = dict(line.split("=", 1) for line in dates.stdout.decode().splitlines())
    start, end = (datetime.strptime(fields[k], "%b %d %H:%M:%S %Y %Z") for k in ("notBefore", "notAfter"))
    assert (end - start).days <= 366, fields


@pytest.mark.parametrize("path", ["/api/health", "/", "/_next/static/app.js"])
def test_security_headers_everywhere(host, path):
    ans = edge(path)
    h = ans.headers
    assert h["strict-transport-security"].startswith("max-age=63072000")
    assert "default-src 'self'" in h["content-security-policy"]
    assert "frame-ancestors 'none'" in h["content-security-policy"]
    assert h["x-frame-options"] == "DENY"
    assert h["x-content-type-options"] == "nosniff"
    assert h["referrer-policy"] == "strict-origin-when-cross-origin"
    assert h["server"] == "nginx", "no version in the Server header"


def test_static_assets_are_cached_for_a_year(host):
    ans = edge("/_next/static/app.js")
    assert ans.status == 200
    assert ans.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert b"window.__CONNECT_VERSION__" in ans.body
    assert "max-age=31536000" not in edge("/api/health").headers.get("cache-control", "")


def test_plain_http_redirects_to_https(host):
    ans = edge("/api/items?x=1", base=EDGE_HTTP)
    assert ans.status == 301
    assert ans.headers["location"].startswith("https://") and ans.headers["location"].endswith("/api/items?x=1")


def test_acme_challenge_is_served_over_plain_http(host):
    token = uuid.uuid4().hex
    directory = "/opt/connect/data/acme/.well-known/acme-challenge"
    host.check_output(f"mkdir -p {directory} && echo {token}-proof > {directory}/{token}")
    try:
        ans = edge(f"/.well-known/acme-challenge/{token}", base=EDGE_HTTP)
        assert ans.status == 200 and ans.body.decode().strip() == f"{token}-proof"
    finally:
        host.run("rm -rf /opt/connect/data/acme/.well-known")


def test_large_uploads_up_to_100m_reach_the_app(host):
    # 1 MB passes nginx (the app answers, whatever it thinks of the name);
    # 101 MB is refused by nginx itself, before the app sees it.
    small = edge("/api/items", "POST", {"name": "x" * 1_000_000})
    assert small.status != 413 and "x-app-instance" in small.headers, small
    big = b"x" * (101 * 1024 * 1024)
    import http.client

    url = urlsplit(EDGE_HTTPS)
    ctx = ssl._create_unverified_context()
    conn = http.client.HTTPSConnection(url.hostname, url.port, timeout=30, context=ctx)
    try:
        conn.putrequest("POST", "/api/items")
        conn.putheader("Content-Length", str(len(big)))
        conn.putheader("Content-Type", "application/json")
        conn.endheaders()
        try:
            conn.send(big[: 1024 * 1024])
        except OSError:
            pass
        ans = conn.getresponse()
        assert ans.status == 413 and ans.getheader("X-App-Instance") is None
    finally:
        conn.close()


def test_grafana_is_behind_auth_under_a_path_not_on_3000(host):
    assert edge("/grafana/").status == 401
    user = harness_vars()["nginx_grafana_users"][0]["name"]
    password = open("/var/lib/connect-harness/keys/grafana_ops_password").read().strip()
    import base64

    auth = {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
    # Authenticated, nginx passes on to Grafana (not deployed yet: 502).
    assert edge("/grafana/", headers=auth).status == 502
    assert edge("/grafana/", headers={"Authorization": "Basic " + base64.b64encode(b"ops:wrong").decode()}).status == 401
    assert host.file("/opt/connect/config/nginx/auth/grafana.htpasswd").mode == 0o640
    assert password not in host.file("/opt/connect/config/nginx/auth/grafana.htpasswd").content_string


def test_nginx_config_passes_nginx_t_and_workers_match_the_cpu_limit(host):
    assert host.run(f"docker exec {CONTAINER['nginx']} nginx -t").rc == 0
    conf = host.file("/opt/connect/config/nginx/main/nginx.conf").content_string
    cpus = float(harness_vars()["compose_stack_resources"]["nginx"]["cpus"])
    assert f"worker_processes {max(1, int(-(-cpus // 1)))};" in conf
    assert "worker_connections 8192;" in conf
    assert "client_max_body_size 100M;" in conf
    assert "keepalive_timeout 65;" in conf


def test_a_config_nginx_rejects_is_never_installed(host, playbook):
    before = host.file("/opt/connect/config/nginx/main/nginx.conf").content_string
    run = playbook("--tags", "nginx", extra_vars={"nginx_client_max_body_size": "100Q"})
    assert run.rc != 0, run
    assert "failed its check" in run.flat and "left as they were" in run.flat, run
    assert '"client_max_body_size" directive invalid value' in run.flat, run
    assert host.file("/opt/connect/config/nginx/main/nginx.conf").content_string == before
    assert edge("/api/health").status == 200


def test_scraper_consumes_a_queued_job_and_writes_its_result(host):
    cfg = json.loads(host.check_output(f"docker inspect {CONTAINER['scraper']}"))[0]
    env = dict(e.split("=", 1) for e in cfg["Config"]["Env"])
    defaults = role_defaults("scraper")
    assert env["SCRAPER_CONCURRENCY"] == str(defaults["scraper_concurrency"]) == "2"
    assert env["SCRAPER_SCHEDULE"] == "09:00,15:00"
    assert env["SCRAPER_RATE_LIMIT_PER_MINUTE"] == "10" and env["SCRAPER_RETRIES"] == "3"
    assert env["TZ"] == "Asia/Seoul"
    job = edge("/api/jobs", "POST", {"url": "https://www.iitp.kr/notice/1", "agency": "iitp"})
    assert job.status in (200, 201, 202), job
    job_id = job.json()["id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ans = edge(f"/api/jobs/{job_id}")
        if ans.status == 200:
            break
        time.sleep(1)
    assert ans.status == 200, ans
    result = ans.json()
    assert result["status"] == "done" and result["worker"].startswith("scraper"), result
    assert result["url"] == "https://www.iitp.kr/notice/1"


def test_kill_app1_during_steady_gets_fails_no_request(host, playbook):
    load = loadgen("--rate", "30", "--mix", "get=80,health=20", duration=20, background=True)
    time.sleep(6)
    host.check_output(f"docker kill -s KILL {APPS[0]}")
    summary = loadgen_result(load)
    assert summary["requests"] >= 500, summary
    assert summary["failed"] == 0, summary["errors_sample"]
    assert summary["outcomes"]["ok"] == summary["requests"]
    assert summary["instances"].get("app1", 0) > 0 and summary["instances"]["app2"] > summary["instances"]["app1"]
    # `docker kill` is a manual stop for Docker: no restart. A converge finds
    # app1 not running and brings it back through the rolling module.
    run = playbook("--tags", "app")
    assert run.rc == 0, run
    assert run.recap["changed"] >= 1, run
    wait_healthy(host, APPS[0])
    assert instances_serving({"app1", "app2"}) == {"app1", "app2"}


def test_peak_season_adds_app3_and_takes_it_away_without_a_failed_request(host, playbook):
    load = loadgen("--rate", "20", "--mix", "get=60,post=20,health=20", duration=300, background=True, stop_file=True)
    try:
        on = playbook("--tags", "app,scraper", extra_vars={"compose_stack_peak_season": True})
        assert on.rc == 0, on
        # The plan is checked again, now with three instances.
        assert "(3 app instances, peak season)" in on.flat and _planned_cpus(on.flat, 3), on
        assert host.file(UPSTREAM_FILE).contains(f"server app3:{PORT['app']}")
        wait_healthy(host, APP3)
        assert instances_serving({"app1", "app2", "app3"}) == {"app1", "app2", "app3"}
        scraper = json.loads(host.check_output(f"docker inspect {CONTAINER['scraper']}"))[0]
        env = dict(e.split("=", 1) for e in scraper["Config"]["Env"])
        assert env["SCRAPER_SCHEDULE"] == "09:00,12:00,15:00,18:00"
        off = playbook("--tags", "app,scraper")
        assert off.rc == 0, off
    finally:
        load.stop()
    summary = loadgen_result(load)
    assert not host.file(UPSTREAM_FILE).contains("app3")
    assert host.run(f"docker inspect {APP3}").rc != 0, "app3 must be removed"
    assert instances_serving({"app1", "app2", "app3"}, seconds=5) == {"app1", "app2"}
    assert summary["instances"].get("app3", 0) > 0, summary["instances"]
    assert summary["failed"] == 0, summary["errors_sample"]


def _planned_cpus(output: str, instances: int) -> bool:
    """The plan's message: the app's CPUs counted `instances` times, each row's by its replicas (exact sums, as the plan adds)."""
    cpus = harness_vars()["compose_stack_resources"]
    total = sum(Decimal(str(v["cpus"])) * int(v.get("replicas", 1)) for k, v in cpus.items() if k != "app")
    total += instances * Decimal(str(cpus["app"]["cpus"]))
    return f"{float(total)} of" in output


def test_the_11th_auth_request_within_a_minute_gets_429(host):
    statuses = [edge("/api/auth/login", "POST", {"email": "a@example.kr", "password": "x"}).status for _attempt in range(11)]
    assert 429 not in statuses[:10], statuses
    assert statuses[10] == 429, statuses
    # A spoofed client address from an untrusted peer changes nothing.
    spoofed = edge(
        "/api/auth/login",
        "POST",
        {"email": "a@example.kr", "password": "x"},
        headers={"CF-Connecting-IP": "203.0.113.7", "X-Forwarded-For": "203.0.113.7"},
    )
    assert spoofed.status == 429
    # Other endpoints are not held by the auth limit.
    assert edge("/api/health").status == 200


def test_a_burst_above_100_rps_gets_429s_and_no_5xx(host):
    summary = loadgen("--concurrency", "16", "--mix", "health=100", "--allow-429", duration=5)
    outcomes = summary["outcomes"]
    assert summary["rps_achieved"] > 150, summary
    assert outcomes["http_429"] > 0, outcomes
    assert outcomes["http_5xx"] == 0 and outcomes["reset"] == 0 and outcomes["timeout"] == 0, outcomes
    # What got through is about the limit: 100 r/s plus the burst of 200.
    assert outcomes["ok"] <= 100 * summary["duration_s"] + 200 + 50, outcomes
    time.sleep(3)  # let the allowance refill for the checks that follow
