"""host_baseline, as the server itself reports it."""

import pytest
from conftest import harness_vars, role_defaults

SSHD_EXPECTED = {
    "permitrootlogin": "no",
    "passwordauthentication": "no",
    "kbdinteractiveauthentication": "no",
    "pubkeyauthentication": "yes",
    "x11forwarding": "no",
    "allowtcpforwarding": "no",
    "maxauthtries": "3",
    "allowusers": "opsadmin",
    "port": "22",
}


@pytest.fixture(scope="module")
def sshd_settings(host):
    out = host.check_output("sshd -T")
    settings = {}
    for line in out.splitlines():
        key, _sep, value = line.partition(" ")
        settings.setdefault(key, value)
    return settings


@pytest.mark.parametrize(("key", "value"), SSHD_EXPECTED.items())
def test_sshd_effective_setting(sshd_settings, key, value):
    assert sshd_settings[key] == value


def test_sshd_running_with_hardened_config(host):
    assert host.service("ssh").is_running
    assert host.socket("tcp://0.0.0.0:22").is_listening
    config = host.file("/etc/ssh/sshd_config")
    assert (config.user, config.mode) == ("root", 0o600)


def test_service_account(host):
    user = host.user("connect")
    assert user.uid == 1001
    assert user.group == "connect"
    assert user.shell == "/usr/sbin/nologin"


def test_admin_has_key_and_sudo(host):
    admin = host.user("opsadmin")
    assert "connect-admins" in admin.groups
    keys = host.file("/home/opsadmin/.ssh/authorized_keys")
    assert keys.mode == 0o600
    assert "opsadmin@connect-harness" in keys.content_string
    # Passwordless sudo for the admin group, as sudo itself evaluates it.
    assert host.run("sudo -l -U opsadmin").stdout.count("NOPASSWD: ALL") == 1


def test_ufw_policy_and_rules(host):
    status = host.check_output("ufw status verbose")
    assert "Status: active" in status
    assert "Default: deny (incoming), allow (outgoing)" in status
    rules = {tuple(line.split()[:3]) for line in status.splitlines() if "/tcp" in line}
    assert ("22/tcp", "LIMIT", "IN") in rules
    for port in (80, 443):
        assert (f"{port}/tcp", "ALLOW", "IN") in rules
    for port in (5432, 6379, 6380, 6432):
        assert (f"{port}/tcp", "DENY", "IN") in rules


@pytest.mark.parametrize(
    ("path", "owner", "group", "mode"),
    [
        ("/opt/connect", "root", "connect", 0o750),
        ("/opt/connect/data/postgres", 999, 999, 0o700),
        ("/opt/connect/data/redis-queue", 999, 999, 0o750),
        ("/opt/connect/uploads", "connect", "connect", 0o750),
        ("/opt/connect/logs/nginx", "root", "root", 0o755),
        ("/opt/connect/logs/app1", "connect", "connect", 0o750),
        ("/opt/connect/logs/app2", "connect", "connect", 0o750),
        ("/opt/connect/backups", "root", "root", 0o700),
        ("/opt/connect/backups/postgres", "root", "root", 0o700),
        ("/opt/connect/backups/redis", "root", "root", 0o700),
        ("/opt/connect/backups/uploads", "root", "root", 0o700),
        ("/opt/connect/backups/audit-logs", "root", "root", 0o700),
        ("/opt/connect/backups/financial", "root", "root", 0o700),
        ("/opt/connect/scripts", "root", "root", 0o750),
        ("/opt/connect/.env.production", "connect", "connect", 0o600),
    ],
)
def test_layout(host, path, owner, group, mode):
    f = host.file(path)
    assert f.exists
    assert (f.uid if isinstance(owner, int) else f.user) == owner
    assert (f.gid if isinstance(group, int) else f.group) == group
    assert f.mode == mode


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("net.core.somaxconn", "4096"),
        ("net.ipv4.tcp_max_syn_backlog", "8192"),
        ("net.ipv4.ip_local_port_range", "10240\t65535"),
        ("net.ipv4.conf.all.log_martians", "1"),
        ("net.ipv4.conf.all.send_redirects", "0"),
        ("net.ipv4.conf.default.accept_source_route", "0"),
    ],
)
def test_namespaced_sysctl_live(host, key, value):
    assert host.check_output(f"sysctl -n {key}") == value


def test_global_sysctl_persisted_not_applied(host):
    # Kernel-global keys are written for the next boot; the harness does not
    # apply them to the machine hosting the server (see harness.yml).
    conf = host.file("/etc/sysctl.d/60-connect.conf").content_string
    assert "vm.overcommit_memory=1" in conf
    assert "vm.swappiness=10" in conf
    assert "fs.protected_regular=2" in conf
    assert "kernel.kptr_restrict=2" in conf


def test_file_limits(host):
    assert "DefaultLimitNOFILE=1048576" in host.file("/etc/systemd/system.conf.d/60-connect-limits.conf").content_string
    assert "* hard nofile 1048576" in " ".join(host.file("/etc/security/limits.d/60-connect.conf").content_string.split())


def test_timezone_seoul(host):
    assert host.check_output("timedatectl show -p Timezone --value") == "Asia/Seoul"
    assert host.check_output("date +%Z") == "KST"


def test_unattended_security_upgrades(host):
    dump = host.check_output("apt-config dump")
    assert 'APT::Periodic::Unattended-Upgrade "1";' in dump
    assert "Debian-Security" in dump
    assert "docker\\.io$" in dump  # the engine is never upgraded behind the operator's back
    assert host.package("unattended-upgrades").is_installed


def test_fail2ban_guards_sshd(host):
    assert host.service("fail2ban").is_running
    assert "sshd" in host.check_output("fail2ban-client status")
    # The jail's settings come from jail.local (Lynis DEB-0880), the one file for them.
    assert host.file("/etc/fail2ban/jail.local").is_file
    assert not host.file("/etc/fail2ban/jail.d/connect-sshd.local").exists
    assert host.check_output("fail2ban-client get sshd maxretry") == str(HARDENING["host_baseline_fail2ban_maxretry"])


# libpwquality's own check, through its C interface, with the configuration the host reads.
PWQUALITY = """
import ctypes, sys
lib = ctypes.CDLL("libpwquality.so.1")
lib.pwquality_default_settings.restype = ctypes.c_void_p
settings = lib.pwquality_default_settings()
assert lib.pwquality_read_config(ctypes.c_void_p(settings), None, None) == 0
for word in sys.argv[1:]:
    print(lib.pwquality_check(ctypes.c_void_p(settings), word.encode(), None, b"connect", None))
"""


def test_passwords_are_checked_for_quality_and_logins_get_a_private_tmpdir(host):
    """libpam-pwquality in common-password refuses a short or one-class password; libpam-tmpdir gives
    each login its own TMPDIR (Lynis AUTH-9262, DEB-0280)."""
    assert "pam_pwquality.so" in host.check_output("grep -v '^#' /etc/pam.d/common-password")
    assert "pam_tmpdir.so" in host.check_output("grep -v '^#' /etc/pam.d/common-session")
    short, one_class, good = (
        int(s) for s in host.check_output(f"python3 -c '{PWQUALITY}' Sh0rt! aaaabbbbccccddddeeee 'Kx9#mQ2$vL7@pR4!'").split()
    )
    assert short < 0 and one_class < 0, f"weak passwords accepted: scores {short}, {one_class}"
    assert good >= 0, f"a 16-character four-class password refused: {good}"
    uid = HARDENING["host_baseline_connect_uid"]
    user = HARDENING["host_baseline_connect_user"]
    assert host.check_output(f"su -s /bin/sh -c 'echo $TMPDIR' - {user}") == f"/tmp/user/{uid}"
    assert host.package("apt-listchanges").is_installed
    assert host.package("apt-show-versions").is_installed


def test_journald_capped(host):
    assert "SystemMaxUse=2G" in host.check_output("systemd-analyze cat-config systemd/journald.conf")


SSH_OPTIONS = [
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "ConnectTimeout=5",
]
ADMIN_KEY = "/var/lib/connect-harness/keys/admin_ed25519"


def _ssh(*args):
    import subprocess
    import time

    from conftest import server_address

    cmd = ["ssh", *SSH_OPTIONS, *args[:-1], server_address(), args[-1]]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    if "Connection refused" in result.stderr:
        # UFW's rate limit on SSH (6 connections in 30 s) rejects for a while.
        time.sleep(31)
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    return result


def test_admin_logs_in_over_ssh_and_sudoes():
    # From outside the server, as an operator would after hardening.
    result = _ssh("-i", ADMIN_KEY, "-l", "opsadmin", "sudo -n id -u")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"


@pytest.mark.parametrize(
    "args",
    [("-i", ADMIN_KEY, "-l", "root"), ("-o", "PubkeyAuthentication=no", "-l", "opsadmin")],
    ids=["root-with-key", "password"],
)
def test_root_and_passwords_are_refused(args):
    result = _ssh(*args, "true")
    assert result.returncode == 255
    assert "Permission denied" in result.stderr


# --- Hardening (issue 13): dev-sec ssh/os-hardening, CIS Ubuntu 22.04 Level 1 ---
HARDENING = role_defaults("host_baseline")


@pytest.mark.parametrize(
    ("key", "option"),
    [
        ("kexalgorithms", "host_baseline_ssh_kex_algorithms"),
        ("ciphers", "host_baseline_ssh_ciphers"),
        ("macs", "host_baseline_ssh_macs"),
        ("hostkeyalgorithms", "host_baseline_ssh_host_key_algorithms"),
    ],
)
def test_sshd_offers_only_the_hardened_algorithms(sshd_settings, key, option):
    offered = sshd_settings[key].split(",")
    assert offered == HARDENING[option], offered
    assert not [a for a in offered if "nistp" in a or "ecdsa" in a or "sha1" in a or "umac-64" in a], offered
    if key == "macs":
        assert all(a.endswith("-etm@openssh.com") for a in offered), offered


def test_sshd_host_keys_keep_alives_sessions_and_banner(host, sshd_settings):
    keys = [line.split(" ", 1)[1] for line in host.check_output("sshd -T").splitlines() if line.startswith("hostkey ")]
    assert keys == HARDENING["host_baseline_ssh_host_keys"], keys
    assert sshd_settings["maxsessions"] == str(HARDENING["host_baseline_ssh_max_sessions"])
    assert sshd_settings["clientalivecountmax"] == str(HARDENING["host_baseline_ssh_client_alive_count_max"])
    assert sshd_settings["banner"] == "/etc/issue.net"


@pytest.mark.parametrize(
    ("option", "refusal"),
    [("KexAlgorithms=ecdh-sha2-nistp256", "no matching key exchange method"), ("MACs=hmac-sha1", "no matching MAC")],
    ids=["nist-kex", "sha1-mac"],
)
def test_a_client_offering_only_a_refused_algorithm_is_turned_away(option, refusal):
    # aes128-ctr (not AEAD) makes the MAC count.
    result = _ssh("-i", ADMIN_KEY, "-o", option, "-o", "Ciphers=aes128-ctr", "-l", "opsadmin", "true")
    assert result.returncode == 255 and refusal in result.stderr, result.stderr


@pytest.mark.parametrize("path", ["/etc/issue", "/etc/issue.net"])
def test_legal_banner_names_no_system(host, path):
    text = host.file(path).content_string
    assert text.strip() == HARDENING["host_baseline_banner"].strip()
    assert "\\" not in text and "Debian" not in text and "Ubuntu" not in text


def test_login_defs_as_the_system_reads_them(host):
    for key, value in HARDENING["host_baseline_login_defs"].items():
        assert host.check_output(f"awk '$1 == \"{key}\" {{print $2}}' /etc/login.defs") == str(value), key


def test_admin_keys_never_meet_an_aged_password(host):
    # No password, so no expiry: login.defs' ages must not lock the key login out.
    aging = host.check_output("chage -l opsadmin")
    assert "Password expires\t\t\t\t\t: never" in aging and ": -1" in aging, aging


@pytest.mark.parametrize("module", HARDENING["host_baseline_disabled_kernel_modules"])
def test_unused_kernel_modules_are_never_loaded(host, module):
    assert host.check_output(f"modprobe -n -v {module}").strip() == "install /bin/false"


def test_process_accounting_and_sysstat_run(host):
    assert host.service("acct").is_running and host.service("acct").is_enabled
    before = host.file("/var/log/account/pacct").size
    host.check_output("true && ls / > /dev/null")
    assert host.file("/var/log/account/pacct").size > before
    assert host.check_output("systemctl is-active sysstat-collect.timer") == "active"


def test_auditd_watches_are_compiled_by_augenrules(host):
    compiled = host.file("/etc/audit/audit.rules").content_string
    root = role_defaults("compose_stack")["compose_stack_root"]
    for watch in HARDENING["host_baseline_audit_watches"]:
        line = f"-w {watch['path'].replace('{{ host_baseline_root }}', root)} -p {watch['permissions']} -k {watch['key']}"
        assert line in compiled, line


@pytest.mark.skipif(harness_vars().get("host_baseline_auditd_load") is False, reason="the kernel refuses auditd in a container")
def test_auditd_has_the_watches_loaded(host):
    assert "-w /etc/shadow -p wa -k identity" in host.check_output("auditctl -l")
