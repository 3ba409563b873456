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
# The financial backups' age key pair: the public half goes to the server
# (backup_financial_recipients), the private half stays here, off the server.
if [ ! -s "$dir/financial_age" ]; then
  command -v age-keygen >/dev/null || {
    echo "[keys] installing age (the financial backups' test key pair)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends age >/dev/null; }
  age-keygen -o "$dir/financial_age" 2>/dev/null
  age-keygen -y "$dir/financial_age" > "$dir/financial_age.pub"
fi
chmod 0600 "$dir/financial_age"
