"""What the monitoring stack costs: CPU and memory of each monitoring container on a disposable
server at rest, then during an open-loop load through nginx (default 60 r/s), from `docker stats`.

    python3 benchmarks/monitoring_cost.py --server connect-demo --url https://127.0.0.1:8443 [--rate 60] [--seconds 60]

Prints one line per container and phase (mean and peak CPU % of one core, mean and peak memory) and
the totals; --json FILE writes the same figures. Standard library only."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

# The monitoring role's containers (roles/monitoring: the contract's entries and its exporters).
CONTAINERS = (
    "connect_prometheus",
    "connect_alertmanager",
    "connect_grafana",
    "connect_node_exporter",
    "connect_postgres_exporter",
    "connect_pgbouncer_exporter",
    "connect_redis_exporter_cache",
    "connect_redis_exporter_queue",
    "connect_blackbox_exporter",
    "connect_connect_exporter",
)
UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "kB": 1000, "MB": 1000**2, "GB": 1000**3}


def _bytes(text: str) -> float:
    number = text.rstrip("".join(sorted({c for unit in UNITS for c in unit})))
    return float(number) * UNITS[text[len(number) :]]


def sample(server: str) -> dict:
    """{container: (cpu percent of one core, memory bytes)} from one `docker stats --no-stream`."""
    out = subprocess.run(
        ["docker", "exec", server, "docker", "stats", "--no-stream", "--format", "{{json .}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = {}
    for line in out.splitlines():
        row = json.loads(line)
        if row["Name"] in CONTAINERS:
            found[row["Name"]] = (float(row["CPUPerc"].rstrip("%")), _bytes(row["MemUsage"].split(" / ")[0].strip()))
    return found


def measure(server: str, seconds: float) -> dict:
    """{container: [(cpu, memory), ...]} sampled for `seconds` (each sample takes about 2 s)."""
    samples: dict[str, list] = {}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for name, figures in sample(server).items():
            samples.setdefault(name, []).append(figures)
    return samples


def summary(samples: dict) -> dict:
    rows = {}
    for name, values in sorted(samples.items()):
        cpu = [c for c, _m in values]
        memory = [m for _c, m in values]
        rows[name] = {
            "cpu_mean": round(statistics.mean(cpu), 2),
            "cpu_peak": round(max(cpu), 2),
            "mem_mean_mib": round(statistics.mean(memory) / 2**20, 1),
            "mem_peak_mib": round(max(memory) / 2**20, 1),
            "samples": len(values),
        }
    rows["total"] = {
        "cpu_mean": round(sum(r["cpu_mean"] for r in rows.values()), 2),
        "mem_mean_mib": round(sum(r["mem_mean_mib"] for r in rows.values()), 1),
    }
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--server", required=True, help="the disposable server's container (connect-demo)")
    parser.add_argument("--url", required=True, help="nginx's HTTPS URL on 127.0.0.1, e.g. https://127.0.0.1:8443")
    parser.add_argument("--rate", type=float, default=60, help="requests/s of the load phase (default 60)")
    parser.add_argument("--seconds", type=float, default=60, help="length of each phase (default 60)")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()

    if not sample(args.server):
        print(f"no monitoring container runs on {args.server}: converge it with site.yml first", file=sys.stderr)
        return 2
    figures = {"rest": summary(measure(args.server, args.seconds))}
    loadgen = Path(__file__).with_name("loadgen.py")
    result = {}

    def load():
        proc = subprocess.run(
            [
                sys.executable,
                str(loadgen),
                "--url",
                args.url,
                "--insecure",
                "--rate",
                str(args.rate),
                "--duration",
                str(args.seconds + 10),
                "--mix",
                "get=60,post=25,health=15",
                "--no-fail-exit",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        result["loadgen"] = proc.stdout[-2000:]

    thread = threading.Thread(target=load)
    thread.start()
    time.sleep(5)  # the load reaches its rate
    figures["load"] = summary(measure(args.server, args.seconds))
    thread.join()
    figures["rate"] = args.rate
    for phase in ("rest", "load"):
        print(f"== {phase}" + (f" ({args.rate:g} r/s through nginx)" if phase == "load" else ""))
        print(f"{'container':32} {'cpu% mean':>9} {'cpu% peak':>9} {'MiB mean':>9} {'MiB peak':>9}")
        for name, row in figures[phase].items():
            if name == "total":
                print(f"{'total':32} {row['cpu_mean']:>9} {'':>9} {row['mem_mean_mib']:>9}")
            else:
                print(f"{name:32} {row['cpu_mean']:>9} {row['cpu_peak']:>9} {row['mem_mean_mib']:>9} {row['mem_peak_mib']:>9}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
