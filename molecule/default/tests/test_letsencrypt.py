"""Let's Encrypt, the production TLS mode, for real (issue 13): certbot on the
server against pebble (Let's Encrypt's own ACME test server, Debian's 2.4, on
this machine: harness/acme-test.sh), HTTP-01 answered through nginx's webroot
on port 80. Issuance under load, the deploy hook's reload serving the new
certificate on 443, a rerun that changes nothing, and a renewal by the unit
certbot.timer starts, under load. The part puts the server back to the
inventory's self-signed certificate at the end."""

import shlex
import ssl
import subprocess
import time
from urllib.parse import urlsplit

import pytest
from conftest import CONTAINER, EDGE_HTTPS, PROJECT, edge, loadgen, loadgen_result, server_address, started_at

NAME = "connect.test"
ACME = PROJECT / "harness" / "acme-test.sh"
ACME_CA = "/var/lib/connect-harness/acme/ca.pem"
LE_VARS = {
    "nginx_tls_mode": "letsencrypt",
    "nginx_server_names": [NAME],
    "nginx_letsencrypt_email": "ops@connect.test",
    "nginx_letsencrypt_server": "https://acme-test:14000/dir",
    "nginx_letsencrypt_ca_file": ACME_CA,
}
RENEWAL = f"/etc/letsencrypt/renewal/{NAME}.conf"
# Back to the inventory's TLS: the nginx role alone (restore_after_a_failed_part, and the teardown).
RESTORE = ("--tags", "nginx")


def served_certificate() -> str:
    """The PEM nginx serves on 443 to a client asking for NAME."""
    url = urlsplit(EDGE_HTTPS)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    import socket

    with socket.create_connection((url.hostname, url.port), timeout=10) as raw, ctx.wrap_socket(raw, server_hostname=NAME) as tls:
        return ssl.DER_cert_to_PEM_cert(tls.getpeercert(binary_form=True))


def certificate_fields(pem: str) -> dict:
    out = subprocess.run(
        ["openssl", "x509", "-noout", "-issuer", "-subject", "-serial", "-ext", "subjectAltName"],
        input=pem, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return {
        "issuer": out.split("issuer=", 1)[1].splitlines()[0].strip(),
        "serial": out.split("serial=", 1)[1].splitlines()[0].strip(),
        "names": out.split("Subject Alternative Name:", 1)[1].strip().splitlines()[0].strip(),
    }


def nginx_log_has_challenge(host) -> bool:
    log = host.run(f"docker logs {CONTAINER['nginx']} 2>&1; cat /opt/connect/logs/nginx/access.log 2>/dev/null").stdout
    return any("/.well-known/acme-challenge/" in line and '" 200 ' in line for line in log.splitlines())


@pytest.fixture(scope="module", autouse=True)
def acme_server(host, playbook):
    """pebble answering for NAME with this server's address; `acme-test` resolves to this machine."""
    subprocess.run(["bash", str(ACME), "start", server_address()], check=True, timeout=120)
    gateway = host.check_output("ip -4 route show default").split()[2]
    host.check_output(f"grep -q ' acme-test$' /etc/hosts || echo {shlex.quote(gateway + ' acme-test')} >> /etc/hosts")
    yield
    # Back to the inventory's self-signed certificate; the Let's Encrypt state and the test CA go.
    host.run(f"certbot delete --non-interactive --cert-name {NAME}")
    dropin = "/etc/systemd/system/certbot.service.d/connect-acme-ca.conf"
    host.run(f"rm -f {dropin} /etc/letsencrypt/connect-acme-ca.pem && systemctl daemon-reload")
    run = playbook(*RESTORE)
    host.run("sed -i '/ acme-test$/d' /etc/hosts")
    subprocess.run(["bash", str(ACME), "stop"], check=False, timeout=60)
    assert run.rc == 0, run
    assert "Pebble" not in certificate_fields(served_certificate())["issuer"]


def under_load(action, seconds: float = 40):
    load = loadgen("--rate", "40", "--mix", "get=70,post=15,health=15", duration=seconds, background=True, stop_file=True)
    try:
        time.sleep(4)
        result = action()
        time.sleep(4)
    finally:
        load.stop()
    return result, loadgen_result(load)


def test_issuance_through_the_webroot_under_load_serves_the_new_certificate(host, playbook):
    nginx_started = started_at(host, CONTAINER["nginx"])
    run, summary = under_load(lambda: playbook(*RESTORE, extra_vars=LE_VARS))
    assert run.rc == 0, run
    assert summary["requests"] >= 300 and summary["failed"] == 0, summary["errors_sample"]
    served = certificate_fields(served_certificate())
    assert "Pebble" in served["issuer"] and served["names"] == f"DNS:{NAME}", served
    # pebble validated HTTP-01 through nginx's webroot on port 80; the renewal is set up the same way.
    renewal = host.file(RENEWAL).content_string
    assert "authenticator = webroot" in renewal and "server = https://acme-test:14000/dir" in renewal, renewal
    assert nginx_log_has_challenge(host), "no answered ACME challenge in nginx's access log"
    # A reload, not a new container: the always-mounted /etc/letsencrypt.
    assert started_at(host, CONTAINER["nginx"]) == nginx_started
    assert host.service("certbot.timer").is_enabled


def test_a_rerun_in_lets_encrypt_mode_changes_nothing(playbook):
    run = playbook(*RESTORE, extra_vars=LE_VARS)
    assert run.rc == 0 and run.recap["changed"] == 0, run


def test_the_timers_unit_renews_a_due_certificate_under_load_and_nginx_serves_it(host):
    before = certificate_fields(served_certificate())
    nginx_started = started_at(host, CONTAINER["nginx"])
    # Due now, as a certificate near its end would be.
    host.check_output(f"sed -i 's/^#\\? *renew_before_expiry.*/renew_before_expiry = 3650 days/' {RENEWAL}")
    if "renew_before_expiry" not in host.file(RENEWAL).content_string:
        host.check_output(f"sed -i '1a renew_before_expiry = 3650 days' {RENEWAL}")
    try:
        renewed, summary = under_load(lambda: host.run("systemctl start certbot.service"))
    finally:
        host.run(f"sed -i '/^renew_before_expiry/d' {RENEWAL}")
    assert renewed.rc == 0, renewed.stderr + host.run("tail -30 /var/log/letsencrypt/letsencrypt.log").stdout
    assert summary["requests"] >= 300 and summary["failed"] == 0, summary["errors_sample"]
    after = certificate_fields(served_certificate())
    assert after["serial"] != before["serial"] and "Pebble" in after["issuer"], (before, after)
    assert started_at(host, CONTAINER["nginx"]) == nginx_started  # the deploy hook reloaded it
    assert edge("/api/health").status == 200
