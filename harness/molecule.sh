#!/usr/bin/env bash
# molecule.sh SCENARIO: `molecule test` (the scenario's test_sequence; the
# server is destroyed at the end, pass or fail), each action timed from
# Molecule's own output (harness/molecule_phases.py).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
molecule test -s "$1" 2>&1 | python3 "$here/molecule_phases.py"
