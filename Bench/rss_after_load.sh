#!/usr/bin/env bash
# RSS of one Strata binary at rest, right after every StrataEtcdBench scenario, and 16 s later (after the idle
# flush), split into anonymous and file-backed pages. For same-run A/B comparisons of builds (docs/benchmarks.md):
#
#   Bench/rss_after_load.sh STRATA_BINARY [SCALE]     (needs .build/release/StrataEtcdBench)
set -euo pipefail
binary=$(realpath "$1")
scale=${2:-0.5}
bench="$(cd "$(dirname "$0")/.." && pwd)/.build/release/StrataEtcdBench"
work=$(mktemp -d)
source "$(dirname "$0")/../scripts/temp-config.sh"
temp_config "$work" '[storage]
sync = "always"
[redis]
enabled = false
[iceberg]
enabled = false'
"$binary" serve --config "$work/config.toml" > "$work/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -sf -o /dev/null "127.0.0.1:$admin_port/health" && break; sleep 0.1; done
sleep 1
rss() { awk '/^(VmRSS|RssAnon|RssFile):/ { printf "%s %d MiB  ", $1, $2 / 1024 }' "/proc/$server/status"; echo; }
echo "at rest:     $(rss)"
for scenario in seq-put put get range txn watch; do
  "$bench" --endpoint "127.0.0.1:$etcd_port" --scenario "$scenario" --scale "$scale" > /dev/null
done
echo "after load:  $(rss)"
curl -s "127.0.0.1:$admin_port/metrics" | grep -E '^strata_storage_memtable_bytes' || true
sleep 16
echo "16 s later:  $(rss)"
