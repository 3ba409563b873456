#!/usr/bin/env bash
# molecule.sh SCENARIO: the scenario's test sequence (molecule.yml), one
# action at a time so that each is timed (harness/phase.sh); the scenario's
# server is destroyed at the end whether the actions passed or not.
set -uo pipefail
scenario=$1
here=$(cd "$(dirname "$0")" && pwd)
actions=$(python3 -c 'import sys, yaml; print(" ".join(yaml.safe_load(open(sys.argv[1]))["scenario"]["test_sequence"]))' \
  "molecule/$scenario/molecule.yml")
cleanup() { bash "$here/phase.sh" "molecule $scenario destroy (cleanup)" molecule destroy -s "$scenario" >/dev/null 2>&1 || true; }
trap cleanup EXIT
for action in $actions; do
  bash "$here/phase.sh" "molecule $scenario $action" molecule "$action" -s "$scenario" || exit 1
done
