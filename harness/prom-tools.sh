#!/usr/bin/env bash
# promtool and amtool for the unit tests (alert rules, Alertmanager routing):
# taken from Debian bookworm's prometheus 2.42 and prometheus-alertmanager
# 0.25 packages (the versions the harness's stand-in images run) and put
# into the virtualenv's bin, without installing (and starting) the services.
#   harness/prom-tools.sh VENV
set -euo pipefail
venv=${1:?usage: prom-tools.sh VENV}
bin="$venv/bin"
if [ -x "$bin/promtool" ] && [ -x "$bin/amtool" ]; then exit 0; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "[setup] promtool and amtool from Debian's prometheus and prometheus-alertmanager"
( cd "$work" && { apt-get download -q prometheus prometheus-alertmanager >/dev/null 2>&1 \
                  || { apt-get update -qq && apt-get download -q prometheus prometheus-alertmanager >/dev/null; }; } )
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/root"; done
install -m 0755 "$work/root/usr/bin/promtool" "$bin/promtool"
install -m 0755 "$work/root/usr/bin/amtool" "$bin/amtool"
"$bin/promtool" --version 2>&1 | head -1
"$bin/amtool" --version 2>&1 | head -1
