"""Run ``ansible-test sanity`` on this checkout, offline or online.

ansible-test needs the collection at ``<dir>/ansible_collections/connect/platform``
as a real directory (its ``symlinks`` test rejects a symlinked one), so this
copies the files git knows about (tracked, plus new files not ignored) into a
temporary tree and runs there, on ONE Python version (default: the one running
this script) to stay fast.

ansible-test bootstraps pip in each throw-away virtual environment with a
script it downloads once into ``~/.ansible/test/cache/``. Where that download
fails (a machine that reaches only a package index), a small stand-in is
written in its place: it bootstraps pip with ``ensurepip`` and installs what
ansible-test asked for through the machine's own pip settings. The stand-in is
written only when the cache file is missing AND the real download fails.

Usage: python tests/sanity/run.py [ansible-test sanity options, e.g. --test pylint]
Exit status: ansible-test's (non-zero when a sanity test fails).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NAMESPACE, NAME = "connect", "platform"
GET_PIP_URL = "https://ci-files.testing.ansible.com/ansible-test/get-pip-{version}.py"

GET_PIP_STAND_IN = '''\
"""Stand-in for get-pip.py, written by tests/sanity/run.py because the real
script could not be downloaded. ansible-test runs it inside a new virtual
environment with pip's install arguments."""

import ensurepip
import os
import shutil
import subprocess
import sys

ensurepip.bootstrap()
for config in ("/etc/pip.conf", "/etc/xdg/pip/pip.conf"):
    if os.path.isfile(config):
        shutil.copyfile(config, os.path.join(sys.prefix, "pip.conf"))
        break
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
command = [sys.executable, "-m", "pip", "install"]
bundle = "/etc/ssl/certs/ca-certificates.crt"
if os.path.isfile(bundle):
    command += ["--cert", bundle]
sys.exit(subprocess.call(command + args))
'''


def ansible_test_pip_version():
    """The pip version ansible-test bootstraps its virtual environments with."""
    import ansible_test

    source = Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
    found = re.search(r"""\bpip=['"]([0-9.]+)['"]""", source.read_text(encoding="utf-8"))
    if not found:
        raise SystemExit(f"cannot find the pip version ansible-test uses in {source}")
    return found.group(1)


def ensure_get_pip():
    """Make sure ansible-test's pip bootstrap script is in its cache."""
    version = ansible_test_pip_version()
    cache = Path.home() / ".ansible" / "test" / "cache" / f"get_pip_{version.replace('.', '_')}.py"
    if cache.is_file():
        return
    cache.parent.mkdir(parents=True, exist_ok=True)
    url = GET_PIP_URL.format(version=version)
    partial = cache.with_suffix(".download")
    try:
        with urllib.request.urlopen(url, timeout=30) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out)
        partial.replace(cache)
        print(f"[sanity] downloaded {url} to {cache}")
    except OSError as exc:
        partial.unlink(missing_ok=True)
        cache.write_text(GET_PIP_STAND_IN, encoding="utf-8")
        print(f"[sanity] {url} unreachable ({exc}); wrote a stand-in bootstrap script to {cache}")


def git_files():
    """Tracked files plus new files git does not ignore, relative to the repository."""
    out = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True,
        capture_output=True,
    ).stdout
    return sorted({name for name in out.decode("utf-8").split("\0") if name})


def copy_collection(target):
    """Copy the collection's files (symlinks kept as symlinks) into ``target``."""
    for name in git_files():
        source = REPO / name
        if not os.path.lexists(source):
            continue  # deleted in the work tree, not yet committed
        dest = target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            os.symlink(os.readlink(source), dest)
        else:
            shutil.copy2(source, dest)


RUNNING = re.compile(r'^Running sanity test "([^"]+)"')


def run_timed(command, cwd):
    """Run ``command``, passing its output through; return (exit status, seconds per sanity test)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    durations = {}
    current, since = None, time.monotonic()
    with subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            found = RUNNING.match(line)
            if found:
                now = time.monotonic()
                if current:
                    durations[current] = durations.get(current, 0.0) + now - since
                current, since = found.group(1), now
        rc = proc.wait()
    if current:
        durations[current] = durations.get(current, 0.0) + time.monotonic() - since
    return rc, durations


def main(argv):
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    ansible_test = shutil.which("ansible-test") or str(Path(sys.executable).parent / "ansible-test")
    ensure_get_pip()
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="connect-sanity-") as tmp:
        root = Path(tmp) / "ansible_collections" / NAMESPACE / NAME
        copy_collection(root)
        command = [ansible_test, "sanity", "--python", python, "--color", "no", *argv]
        print(f"[sanity] {' '.join(command)} (in {root})", flush=True)
        rc, durations = run_timed(command, root)
    elapsed = time.monotonic() - start
    slowest = sorted(durations.items(), key=lambda item: -item[1])[:5]
    print("[sanity] slowest tests (with their requirements install): " + ", ".join(f"{name} {secs:.0f} s" for name, secs in slowest))
    print(f"[sanity] ansible-test sanity {'passed' if rc == 0 else f'FAILED (exit {rc})'} in {elapsed:.0f} s")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
