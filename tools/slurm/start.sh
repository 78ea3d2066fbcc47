#!/bin/bash
# Start a throw-away SLURM cluster (munged + slurmctld + slurmd) on loopback, as root, with all state in DIR.
#   tools/slurm/start.sh DIR [CPUS]
# Prints `export SLURM_CONF=DIR/slurm.conf` on success; stop it with tools/slurm/stop.sh DIR.
set -euo pipefail
dir=$(realpath -m "${1:?usage: start.sh DIR [CPUS]}")
cpus=${2:-$(nproc)}
here=$(dirname "$(realpath "$0")")

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

mkdir -p "$dir/munge" "$dir/ctld" "$dir/slurmd"
chmod 700 "$dir/munge"
# munged insists on a private key file and private directories.
[ -f "$dir/munge/munge.key" ] || dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$dir/munge/munge.key"
munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
  --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed"

mem_mb=$(awk '/MemTotal/ {print int($2 / 1024 / 2)}' /proc/meminfo)
sed -e "s|@DIR@|$dir|g" -e "s|@CTLD_PORT@|$(free_port)|" -e "s|@SLURMD_PORT@|$(free_port)|" \
    -e "s|@CPUS@|$cpus|" -e "s|@MEM_MB@|$mem_mb|" "$here/slurm.conf.in" > "$dir/slurm.conf"
export SLURM_CONF="$dir/slurm.conf"

slurmctld -c -f "$SLURM_CONF"          # -c: a clean start, no state from an earlier run
slurmd -f "$SLURM_CONF" -N localhost

# Wait until the node accepts work.
for _ in $(seq 1 60); do
  state=$(sinfo -h -N -o '%T' 2>/dev/null | head -1 || true)
  case "$state" in idle|mixed|allocated) echo "export SLURM_CONF=$SLURM_CONF"; exit 0 ;; esac
  sleep 0.5
done
echo "start.sh: the node did not become idle (state: ${state:-none}); see $dir/slurmctld.log and $dir/slurmd.log" >&2
exit 1
