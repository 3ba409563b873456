#!/usr/bin/env bash
# The disposable servers' admin key pair, made once outside the repository
# (the demo and test inventories read the public half from here).
set -euo pipefail
dir=/var/lib/connect-harness/keys
mkdir -p "$dir"; chmod 0700 "$dir"
if [ ! -s "$dir/admin_ed25519" ]; then
  ssh-keygen -q -t ed25519 -N '' -C opsadmin@connect-harness -f "$dir/admin_ed25519"
fi
chmod 0600 "$dir/admin_ed25519"
