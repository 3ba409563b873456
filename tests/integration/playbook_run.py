"""An ansible-playbook run as the tests read it (the bad-input tests here and
the Molecule scenario's checks both use it)."""

from __future__ import annotations

import re
import subprocess

RECAP = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)"
    r"\s+unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)",
    re.MULTILINE,
)


class PlaybookRun:
    def __init__(self, proc: subprocess.CompletedProcess[str]):
        self.rc = proc.returncode
        self.output = proc.stdout + proc.stderr
        # One line, quotes unescaped: callbacks wrap long messages and escape quotes.
        self.flat = " ".join(self.output.replace('\\"', '"').split())
        m = RECAP.search(self.output)
        self.recap = {k: int(v) for k, v in m.groupdict().items() if k != "host"} if m else None
        # Every host's recap (a cluster's run has several).
        self.hosts = {m["host"]: {k: int(v) for k, v in m.groupdict().items() if k != "host"} for m in RECAP.finditer(self.output)}

    def __repr__(self) -> str:  # shown by pytest on failure
        return f"PlaybookRun(rc={self.rc}, recap={self.recap})\n{self.output[-4000:]}"
