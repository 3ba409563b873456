#!/usr/bin/env bash
# parallel.sh NAME=COMMAND...: runs each COMMAND (through bash -c) at the same
# time, every line of its output prefixed with "[NAME] ", and waits for all of
# them. Exits non-zero when any failed, after naming each one that did (a
# failure does not stop the others: their figures still count).
# CI uses it where the two cores are mostly waiting: the harness host's setup
# (downloads, debootstraps, image builds) beside lint/unit/sanity, and the
# Molecule scenarios side by side.
set -uo pipefail
[ $# -gt 0 ] || { echo "usage: parallel.sh NAME=COMMAND..." >&2; exit 2; }
names=() pids=()
for job in "$@"; do
  name=${job%%=*} cmd=${job#*=}
  if [ -z "$name" ] || [ "$name" = "$job" ]; then echo "parallel.sh: '$job' is not NAME=COMMAND" >&2; exit 2; fi
  # The prefix is added line by line as the output arrives (no buffering).
  ( set -o pipefail; bash -c "$cmd" 2>&1 | while IFS= read -r line; do printf '[%s] %s\n' "$name" "$line"; done ) &
  names+=("$name") pids+=($!)
done
failed=()
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || failed+=("${names[$i]}")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "parallel.sh: failed: ${failed[*]}" >&2
  exit 1
fi
echo "parallel.sh: all passed: ${names[*]}"
