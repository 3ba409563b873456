# A disposable server on the production OS, for machines that can pull
# ubuntu:22.04 (this project's CI machine cannot; it uses Debian 13).
#   docker build -t connect-harness/server:jammy -f harness/ubuntu-server.Dockerfile harness
#   CONNECT_SERVER_IMAGE=connect-harness/server:jammy make demo
FROM ubuntu:22.04
ENV container=docker DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends systemd systemd-sysv dbus python3 python3-apt \
      iproute2 ca-certificates sudo openssh-server procps curl gnupg kmod \
 && rm -rf /var/lib/apt/lists/* \
 && : > /etc/machine-id
STOPSIGNAL SIGRTMIN+3
CMD ["/sbin/init"]
