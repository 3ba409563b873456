"""Time each Molecule action from `molecule test`'s own output.

Reads Molecule's output on standard input, passes every line through, and
when an action ends ("<scenario> ➜ <action>: Executed") prints
"[phase] molecule <scenario> <action>: N s" (appended to $PHASE_LOG too,
for .ci/run's summary). Running the actions one by one instead would not do:
`molecule check` alone runs a whole sequence of its own (create, converge,
check, destroy)."""

from __future__ import annotations

import os
import re
import sys
import time

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|\x1b\]8;;[^\x1b]*\x1b\\\\")
EVENT = re.compile(r"(?P<scenario>\S+) ➜ (?P<action>[a-z_]+): (?P<what>Executing|Executed)(?P<rest>.*)")


def main() -> int:
    started: dict[str, float] = {}
    log = os.environ.get("PHASE_LOG")
    for raw in sys.stdin:
        sys.stdout.write(raw)
        sys.stdout.flush()
        m = EVENT.search(ANSI.sub("", raw))
        if not m:
            continue
        key = f"{m['scenario']} {m['action']}"
        if m["what"] == "Executing":
            started[key] = time.monotonic()
        elif key in started:
            verdict = m["rest"].strip().lstrip(":").strip()
            if "issing" in verdict:  # an action the scenario does not have (no playbook)
                started.pop(key)
                continue
            line = f"[phase] molecule {key}: {time.monotonic() - started.pop(key):.0f} s ({verdict or 'done'})"
            print(line, flush=True)
            if log:
                with open(log, "a", encoding="utf-8") as fh:
                    fh.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
