#!/usr/bin/env bash
# The README's `make demo` figure: a fresh clone of this checkout, the install first (not timed), then `make demo` timed with
# no data or MLflow variable and an empty parse cache, the way a new user runs it. Prints the time line and writes
# benchmarks/results/demo_time.md. Run it with nothing else on the machine: `bash benchmarks/demo_time.sh`.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q "$repo" "$work/clone"
cd "$work/clone"
make venv >/dev/null
export CRYPTOFORECAST_CACHE_DIR="$work/cache"
unset CRYPTOFORECAST_DATA_DIR MLFLOW_TRACKING_URI MLFLOW_REGISTRY_URI
/usr/bin/time -f "wall %e s, user %U s, system %S s" -o "$work/time" make demo > "$work/demo.log" 2>&1
cat "$work/time"
{ echo "# make demo, timed"
  echo
  echo "\`bash benchmarks/demo_time.sh\` on $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg):"
  echo
  echo "    $(cat "$work/time")"
  echo
  echo "The demo's last lines:"
  echo
  tail -n 12 "$work/demo.log" | sed 's/^/    /'
} > "$repo/benchmarks/results/demo_time.md"
