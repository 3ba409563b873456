"""Profile a converge: run site.yml with ansible.posix.profile_tasks against
one inventory and print the wall time, the play recap, the slowest tasks and
the time per role.

    python3 benchmarks/converge_profile.py -i inventories/demo [--top 25]
        [--log FILE] [--json FILE] [-- EXTRA ansible-playbook ARGS]

Exit status: the playbook's. Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# profile_tasks' summary line: "<task name> ---...--- 1.23s"
TASK_LINE = re.compile(r"^(?P<name>.+?) -{3,} (?P<secs>\d+\.\d+)s$")
RECAP_LINE = re.compile(r"^\S+\s+: ok=\d+")


def role_of(task: str) -> str:
    """`connect.platform.host_baseline : Create ...` -> host_baseline; others -> (play)."""
    if " : " not in task:
        return "(play)"
    role = task.split(" : ", 1)[0].strip()
    return role.rsplit(".", 1)[-1]


def parse(output: str) -> tuple[list[str], list[tuple[str, float]]]:
    recap, tasks, in_summary = [], [], False
    for line in output.splitlines():
        line = line.rstrip()
        if RECAP_LINE.match(line):
            recap.append(line)
        if line.startswith("=" * 20):
            in_summary = True
            continue
        if in_summary:
            match = TASK_LINE.match(line)
            if match:
                tasks.append((match["name"], float(match["secs"])))
    return recap, tasks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("-i", "--inventory", required=True, help="inventory of the server(s)")
    parser.add_argument("--playbook", default=str(REPO / "site.yml"))
    parser.add_argument("--top", type=int, default=25, help="slowest tasks to print (25)")
    parser.add_argument("--log", help="write the playbook's whole output here")
    parser.add_argument("--json", help="write wall time, recap, per-role totals and tasks here")
    parser.add_argument("extra", nargs="*", help="more ansible-playbook arguments (after --)")
    args = parser.parse_args()

    env = dict(
        os.environ,
        ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks",
        PROFILE_TASKS_TASK_OUTPUT_LIMIT="1000",
        PROFILE_TASKS_SORT_ORDER="descending",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
    )
    cmd = ["ansible-playbook", "-i", args.inventory, args.playbook, *args.extra]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - start
    output = proc.stdout + proc.stderr
    if args.log:
        Path(args.log).write_text(output)
    recap, tasks = parse(proc.stdout)

    per_role: dict[str, list[float]] = defaultdict(list)
    for name, secs in tasks:
        per_role[role_of(name)].append(secs)

    # -e values may be secrets (a vault value changed for a test): not echoed.
    shown = [arg if prev not in ("-e", "--extra-vars") else "<hidden>" for prev, arg in zip(["", *cmd[:-1]], cmd, strict=True)]
    print(f"command: {' '.join(shown)}")
    # Each loop item counts: a task that ran (ok or changed) on a host is, unless it is a
    # local action (set_fact, assert...), one remote call.
    ran = len(re.findall(r"^(?:ok|changed): \[", proc.stdout, re.MULTILINE))
    slow = sum(1 for _name, secs in tasks if secs >= 0.3)
    print(f"wall time: {wall:.1f} s   exit: {proc.returncode}   task runs: {len(tasks)}")
    print(f"results ok/changed (loop items counted): {ran}   task runs of 0.3 s or more: {slow}")
    print("recap:")
    for line in recap:
        print(f"  {line}")
    print(f"slowest {args.top} tasks:")
    for name, secs in sorted(tasks, key=lambda t: -t[1])[: args.top]:
        print(f"  {secs:7.2f} s  {name}")
    print("per role (total s, task runs):")
    for role, times in sorted(per_role.items(), key=lambda kv: -sum(kv[1])):
        print(f"  {sum(times):7.1f} s  {len(times):4d}  {role}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "wall_seconds": round(wall, 1),
                    "results_ran": ran,
                    "exit": proc.returncode,
                    "recap": recap,
                    "per_role": {r: round(sum(t), 2) for r, t in per_role.items()},
                    "tasks": tasks,
                },
                indent=2,
            )
        )
    if proc.returncode != 0:
        sys.stderr.write(output[-4000:])
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
