"""Exposure seen from outside the server: only 22, 80 and 443 answer.

Inside the server, something listens on every port that matters, both as a
host process (UFW's job) and as ports a container publishes (the
DOCKER-USER guard's job); nginx publishes 80 and 443. The probe then connects from this machine, which
is outside the server, to the server's own address.
"""

import time

import pytest
from conftest import server_address, tcp_answers

EDGE = (80, 443)  # published by connect_nginx
PUBLISHED = (3000, 6432)  # published by a probe container on all addresses
HOST_LISTENERS = (5432, 6379, 6380)  # plain processes on the host
OPEN = {22, 80, 443}


@pytest.fixture(scope="module")
def listeners(host):
    registry = host.check_output("ip -4 route show default").split()[2] + ":5000"
    image = f"{registry}/connect-harness/probe:1"
    host.run("docker rm -f exposure-probe")
    publish = " ".join(f"-p {p}:8000" for p in PUBLISHED)
    host.check_output(f"docker run -d --name exposure-probe {publish} {image} busybox httpd -f -p 8000")
    ports = ",".join(str(p) for p in HOST_LISTENERS)
    host.check_output(
        "systemd-run --unit exposure-listeners --collect python3 -c "
        f"'import socket,time\nss=[]\nfor p in ({ports},):\n"
        " s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
        ' s.bind(("0.0.0.0",p)); s.listen(16); ss.append(s)\ntime.sleep(600)\''
    )
    for port in (*PUBLISHED, *HOST_LISTENERS):
        host.run(f"timeout 10 sh -c 'until ss -ltn | grep -q :{port}\\ ; do sleep 0.2; done'")
    yield
    host.run("docker rm -f exposure-probe")
    host.run("systemctl stop exposure-listeners")


ALL_PORTS = sorted({22, *EDGE, *PUBLISHED, *HOST_LISTENERS})


@pytest.mark.parametrize("port", ALL_PORTS)
def test_listener_answers_inside(host, listeners, port):
    # Without this, "closed from outside" could mean "nothing listening".
    assert host.run(f"timeout 3 bash -c '</dev/tcp/127.0.0.1/{port}'").rc == 0


@pytest.mark.parametrize("port", ALL_PORTS)
def test_only_ssh_http_https_answer_from_outside(listeners, port):
    answers = tcp_answers(server_address(), port)
    if port == 22 and not answers:
        # UFW's limit on SSH refuses a 6th connection within 30 s: the host part's logins just before count.
        time.sleep(31)
        answers = tcp_answers(server_address(), port)
    assert answers is (port in OPEN)
