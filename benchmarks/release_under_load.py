"""Run a release playbook (deploy.yml or rollback.yml) while loadgen.py keeps
a steady open-loop load on nginx, and report what the clients saw.

    python3 benchmarks/release_under_load.py --server connect-demo \\
        --inventory inventories/demo --url https://127.0.0.1:8443 \\
        --playbook deploy.yml -e 'release_image={{ connect_harness_registry }}/connect-harness/testapp:v2'

Bounded: the load runs at most --max-seconds and only against 127.0.0.1
(loadgen refuses anything else). Prints request counts by outcome, the
versions served before/after, the rolling phase's duration and each
instance's drain and boot-to-healthy times (from the deploy log the release
role writes on the server), and writes everything as JSON with --json.
Exit status: the playbook's, unless --expect-failure (then 0 iff it failed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def server_log_tail(server: str, path: str) -> dict | None:
    """The last deploy-log line on the disposable server (a container)."""
    proc = subprocess.run(["docker", "exec", server, "tail", "-n", "1", path], capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        return None
    return json.loads(proc.stdout)


def versions_after(records: Path, since: float) -> dict:
    """Versions of the answers to requests that started after `since`."""
    seen: dict[str, int] = {}
    with records.open() as fh:
        for line in fh:
            rec = json.loads(line)
            if rec["start"] >= since and rec.get("version"):
                seen[rec["version"]] = seen.get(rec["version"], 0) + 1
    return seen


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", required=True, help="the disposable server's container name (for its deploy log)")
    ap.add_argument("--inventory", required=True, action="append", help="an inventory source (repeat for more)")
    ap.add_argument("--url", required=True, help="nginx's published HTTPS address on 127.0.0.1")
    ap.add_argument("--playbook", default="deploy.yml")
    ap.add_argument("-e", "--extra-vars", action="append", default=[], help="passed to ansible-playbook")
    ap.add_argument("--rate", type=float, default=60)
    ap.add_argument("--mix", default="get=50,post=25,slow=10,health=15")
    ap.add_argument("--slow-ms", type=int, default=5000)
    ap.add_argument("--warmup", type=float, default=5, help="seconds of load before the playbook starts")
    ap.add_argument("--cooldown", type=float, default=8, help="seconds of load after it ends")
    ap.add_argument("--max-seconds", type=int, default=900)
    ap.add_argument("--log-file", default="/opt/connect/logs/deploy.log")
    ap.add_argument("--expect-failure", action="store_true", help="the playbook is expected to fail (broken releases)")
    ap.add_argument("--json", help="write the report here too")
    ap.add_argument("--playbook-output", help="write the playbook's whole output here (a test searches it for secrets)")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="release-load-"))
    stop, summary_file, records = work / "stop", work / "load.json", work / "records.jsonl"
    load = subprocess.Popen(
        [sys.executable, str(HERE / "loadgen.py"), "--url", args.url, "--insecure", "--rate", str(args.rate), "--mix", args.mix,
         "--slow-ms", str(args.slow_ms), "--duration", str(args.max_seconds), "--stop-file", str(stop),
         "--json", str(summary_file), "--records", str(records)],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(args.warmup)
    before_log = server_log_tail(args.server, args.log_file)
    venv_bin = Path(sys.executable).with_name("ansible-playbook")
    cmd = [
        str(venv_bin) if venv_bin.exists() else "ansible-playbook",
        *(arg for source in args.inventory for arg in ("-i", source)),
        args.playbook,
    ]
    for ev in args.extra_vars:
        cmd += ["-e", ev]
    t0 = time.time()
    try:
        play = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, ANSIBLE_NOCOLOR="1"), check=False)
        t1 = time.time()
        if args.playbook_output:
            Path(args.playbook_output).write_text(play.stdout + play.stderr)
        time.sleep(args.cooldown)
    finally:
        stop.touch()
    load_err = load.communicate(timeout=120)[1]
    summary = json.loads(summary_file.read_text())
    entry = server_log_tail(args.server, args.log_file)
    if entry == before_log:
        entry = None  # the playbook wrote nothing (a no-op, or it stopped before the log)
    report = {
        "playbook": args.playbook,
        "extra_vars": args.extra_vars,
        "playbook_rc": play.returncode,
        "playbook_seconds": round(t1 - t0, 1),
        "playbook_started": t0,
        "playbook_ended": t1,
        "load": summary,
        "versions_after_playbook": versions_after(records, t1),
        "deploy_log": entry,
        "playbook_tail": play.stdout[-3000:] + play.stderr[-2000:],
    }
    sys.stderr.write(load_err)
    out = sys.stderr
    out.write(f"\n{args.playbook} {' '.join(args.extra_vars)}: rc={play.returncode} in {report['playbook_seconds']} s\n")
    out.write(f"  requests: {summary['requests']} ({summary['rps_achieved']} r/s); outcomes: "
              + ", ".join(f"{k}={v}" for k, v in summary["outcomes"].items() if v) + f"; failed={summary['failed']}\n")  # fmt: skip
    out.write(f"  versions served: {summary['versions']}; after the playbook: {report['versions_after_playbook']}\n")
    if entry:
        out.write(f"  result: {entry['result']}; rolling phase: {entry.get('rollout_seconds')} s; whole run: {entry['seconds']} s\n")
        for inst in entry.get("instances") or []:
            out.write(
                f"    {inst['service']}: {inst.get('action')}, drain {inst.get('drain_s', '-')} s, "
                f"boot-to-healthy {inst.get('boot_to_healthy_s', '-')} s, watch {inst.get('watch_s', '-')} s\n"
            )
        if entry.get("error"):
            out.write(f"  error: {entry['error'][:400]}\n")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "playbook_tail"}, indent=2))
    if args.expect_failure:
        return 0 if play.returncode != 0 else 1
    return play.returncode


if __name__ == "__main__":
    sys.exit(main())
