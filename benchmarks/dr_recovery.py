"""Lose a disposable server and recover it with dr.yml: print the RPO and the RTO.

    python3 benchmarks/dr_recovery.py --server connect-demo --inventory inventories/demo \\
        --publish 127.0.0.1:8080:80,127.0.0.1:8443:443 [--dataset 150000,20000,500000] [--json FILE]

Steps: the realistic dataset (benchmarks/dataset.sql) into the app database;
the nightly jobs now (pg-full with its manifest, the uploads, the queue); a
writer inserting a timestamped row every second inside the server; a random
20-50 s later the server is destroyed (harness/server.sh destroy), a new one
with the same name created keeping its off-site bucket (--keep-offsite), and
dr.yml run against it. Printed: the RPO (the moment of loss minus the newest
row that survived), the RTO (dr.yml from a bare server to healthy through
nginx), dr.yml's restore phase and its manifest check.
molecule/default/tests/test_dr.py runs the same steps and asserts on them.
Destroys the server it is given: only for the harness's disposable servers.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT / "harness" / "server.sh"
_CONTRACT = yaml.safe_load((ROOT / "roles" / "compose_stack" / "defaults" / "main.yml").read_text())
PG = _CONTRACT["compose_stack_services"]["postgres"]["container"]
DATABASE = _CONTRACT["compose_stack_database"]["name"]
PSQL = f"docker exec -i -u postgres {PG} psql -X -At -v ON_ERROR_STOP=1 -d {DATABASE}"
WRITER_TABLE = "CREATE TABLE IF NOT EXISTS dr_probe (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())"
DATASET_SIZES = (150000, 20000, 500000)


def on_server(server: str, command: str, stdin: bytes | None = None, timeout: int = 900) -> str:
    """A shell command on the disposable server (a container); its standard output."""
    done = subprocess.run(
        ["docker", "exec", "-i", server, "sh", "-c", command], input=stdin, capture_output=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{command!r} on {server} failed (rc {done.returncode}): {done.stderr.decode(errors='replace')[-600:]}")
    return done.stdout.decode().strip()


def load_dataset(server: str, sizes=DATASET_SIZES) -> tuple[dict, float]:
    """The dataset in the app database; (row counts per table, seconds)."""
    begun = time.monotonic()
    programs, organizations, matches = sizes
    sql = (ROOT / "benchmarks" / "dataset.sql").read_bytes()
    on_server(server, f"{PSQL} -v programs={programs} -v organizations={organizations} -v matches={matches}", stdin=sql)
    return dataset_counts(server), time.monotonic() - begun


def dataset_counts(server: str) -> dict:
    out = on_server(
        server,
        f"{PSQL} -c \"SELECT 'programs=' || count(*) FROM dataset.funding_programs UNION ALL "
        f"SELECT 'organizations=' || count(*) FROM dataset.organizations UNION ALL SELECT 'matches=' || count(*) FROM dataset.matches\"",
    )
    return dict(line.split("=") for line in out.splitlines())


def run_job(server: str, job: str) -> dict:
    """A backup job now, through its systemd unit; its status record."""
    subprocess.run(["docker", "exec", server, "systemctl", "start", f"connect-backup@{job}.service"], capture_output=True, check=False)
    return json.loads(on_server(server, f"cat /opt/connect/backups/status/{job}.json"))


def start_writer(server: str) -> None:
    """A row a second into dr_probe, from inside the PostgreSQL container (it dies with the server).
    The table and a first row are archived at once (a WAL switch): what the loss takes is only what
    the writer wrote after the newest archived segment."""
    on_server(server, f"{PSQL} -c '{WRITER_TABLE}' -c 'INSERT INTO dr_probe DEFAULT VALUES' -c 'SELECT pg_switch_wal()'")
    on_server(
        server,
        f"docker exec -d -u postgres {PG} sh -c "
        f"'while :; do psql -X -q -d {DATABASE} -c \"INSERT INTO dr_probe DEFAULT VALUES\"; sleep 1; done'",
    )


def newest_row(server: str) -> float:
    return float(on_server(server, f'{PSQL} -c "SELECT extract(epoch FROM max(at)) FROM dr_probe"'))


def lose(server: str) -> float:
    """Destroy the server; the moment it was lost (epoch seconds)."""
    lost_at = time.time()
    subprocess.run(["bash", str(HARNESS), "destroy", server], check=True, capture_output=True, timeout=300)
    return lost_at


def recreate(server: str, publish: list[str]) -> None:
    """A new, bare server with the same name, finding its predecessor's off-site bucket."""
    ports = [arg for spec in publish for arg in ("-p", spec)]
    subprocess.run(["bash", str(HARNESS), "create", server, "--keep-offsite", *ports], check=True, capture_output=True, timeout=300)


def dr_report(server: str) -> dict:
    return json.loads(on_server(server, "cat /opt/connect/.dr_restored.json"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--server", required=True)
    parser.add_argument("--inventory", action="append", required=True, help="an inventory source (repeatable)")
    parser.add_argument("--publish", default="127.0.0.1:8080:80,127.0.0.1:8443:443", help="the new server's published ports")
    parser.add_argument("--dataset", default=",".join(map(str, DATASET_SIZES)), help="programs,organizations,matches")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sizes = tuple(int(n) for n in args.dataset.split(","))
    figures: dict = {}
    counts, figures["dataset_load_s"] = load_dataset(args.server, sizes)
    print(f"dataset: {counts} in {figures['dataset_load_s']:.1f} s", flush=True)
    for job in ("pg-full", "files-uploads", "files-queue"):
        record = run_job(args.server, job)
        if record["result"] != "ok":
            print(f"{job} failed: {record}", file=sys.stderr)
            return 1
        figures[f"{job}_s"] = record["seconds"]
    start_writer(args.server)
    time.sleep(random.uniform(20, 50))
    lost_at = lose(args.server)
    print(f"server lost at {datetime.fromtimestamp(lost_at, timezone.utc).isoformat()}", flush=True)
    recreate(args.server, args.publish.split(","))
    begun = time.monotonic()
    inventories = [arg for source in args.inventory for arg in ("-i", source)]
    done = subprocess.run(["ansible-playbook", *inventories, str(ROOT / "dr.yml")], cwd=ROOT, capture_output=True, text=True, check=False)
    figures["rto_s"] = round(time.monotonic() - begun, 1)
    if done.returncode != 0:
        print(done.stdout[-3000:] + done.stderr[-2000:], file=sys.stderr)
        return 1
    report = dr_report(args.server)
    figures.update(
        rpo_s=round(lost_at - newest_row(args.server), 1),
        restore_phase_s=report["restore_seconds"],
        newest_transaction=report["newest_transaction"],
        manifest=report["manifest"],
        dataset_after=dataset_counts(args.server),
    )
    print(json.dumps(figures, indent=2, sort_keys=True))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
