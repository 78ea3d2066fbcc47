#!/bin/bash
# Stop the cluster that tools/slurm/start.sh DIR started: each daemon by the pid in its own pid file
# (SIGTERM to all three, then SIGKILL to any still there after 10 s).
set -uo pipefail
dir=$(realpath -m "${1:?usage: stop.sh DIR}")
pids=()
for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null && pids+=("$pid")
done
for _ in $(seq 1 100); do
  alive=()
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
  [ ${#alive[@]} -eq 0 ] && exit 0
  sleep 0.1
done
for pid in "${alive[@]}"; do kill -9 "$pid" 2>/dev/null; done
exit 0
