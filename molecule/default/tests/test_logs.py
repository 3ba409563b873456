"""Part `logs`, after the others but dr (conftest.PARTS): after the converge, every
part's playbook runs, the restarts and the releases, no secret's value
(nor a backup repository's passphrase) appears in the server's journal (sudo logs every command line it runs,
environment included), in /var/log, under /opt/connect/logs, or in any
container's own log."""

SEARCH = r"""
haystack=$(mktemp)
{ journalctl --no-pager -o cat 2>/dev/null
  find /var/log /opt/connect/logs -type f -size -50M -exec cat {} + 2>/dev/null
  for c in $(docker ps -aq); do docker logs "$c" 2>&1; done; } > "$haystack"
wc -c < "$haystack"
for f in /opt/connect/secrets/*; do
  [ -f "$f" ] || continue
  s=$(cat "$f")
  [ ${#s} -ge 8 ] || continue
  if grep -qF -- "$s" "$haystack"; then echo "LEAK ${f##*/}"; fi
done
# The backup repositories' passphrases live in pgBackRest's configuration.
for s in $(sed -n 's/^repo[0-9]*-cipher-pass=//p' /opt/connect/config/pgbackrest/pgbackrest.conf); do
  if grep -qF -- "$s" "$haystack"; then echo "LEAK pgbackrest-cipher-pass"; fi
done
rm -f "$haystack"
"""


def test_no_secret_in_any_log(host):
    lines = host.check_output("bash -s <<'SEARCH'\n" + SEARCH + "\nSEARCH").splitlines()
    searched = int(lines[0])
    assert searched > 100_000, f"only {searched} bytes of logs searched: the search itself is broken"
    secrets = host.check_output("ls /opt/connect/secrets").split()
    assert len(secrets) >= 8, secrets
    leaks = [line.split()[1] for line in lines[1:] if line.startswith("LEAK ")]
    assert leaks == [], f"secrets found in the logs: {leaks}"
