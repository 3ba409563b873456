#!/usr/bin/env bash
# phase.sh NAME COMMAND...: runs COMMAND and prints how long it took, as
# "[phase] NAME: N s". With PHASE_LOG set, the line is appended there too, so
# that .ci/run can print every phase's time again at the end.
set -uo pipefail
name=$1
shift
start=$(date +%s)
"$@"
rc=$?
line="[phase] $name: $(($(date +%s) - start)) s"
[ "$rc" -eq 0 ] || line="$line (failed, exit $rc)"
echo "$line"
if [ -n "${PHASE_LOG:-}" ]; then echo "$line" >>"$PHASE_LOG"; fi
exit "$rc"
