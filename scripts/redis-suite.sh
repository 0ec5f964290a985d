#!/usr/bin/env bash
# Runs Redis 7.0's own Tcl test suite (a redis 7.0 `tests` tree: `runtest` and `tests/`) against a fresh Strata:
#   scripts/redis-suite.sh SUITE_DIR [unit ...]
# (STRATA_SUITE_SERVER=redis runs it against Debian's redis-server instead: the number of checks to compare with.)
# with the profile for a non-Redis server (TESTSUITE.md's profile C: no DEBUG, replication, SAVE, eviction,
# RESETSTAT, RESET, PFDEBUG, LATENCY; encodings and digests not checked). The default units are every unit with a
# check in that profile. Each unit gets its own fresh Strata (the suite leaves configuration behind). Prints one
# line per unit (ok / err / ignored) and a total; the suite's own output goes to .build/redis-suite/<unit>.log.
set -uo pipefail
suite=${1:?usage: scripts/redis-suite.sh SUITE_DIR [unit ...]}
shift
root=$(cd "$(dirname "$0")/.." && pwd)
binary=${STRATA_BINARY:-$root/.build/debug/strata}
work=$root/.build/redis-suite
rm -rf "$work" && mkdir -p "$work"
cp -r "$suite" "$work/tree"
mkdir -p "$work/tree/src"
ln -sf "$(command -v redis-cli)" "$work/tree/src/redis-cli"
units=("$@")
if [ ${#units[@]} -eq 0 ]; then
  units=(unit/keyspace unit/type/string unit/type/incr unit/type/list unit/type/list-3 unit/type/set unit/type/zset
    unit/type/hash unit/expire unit/multi unit/pubsub unit/scan unit/sort unit/bitops unit/bitfield unit/other
    unit/quit unit/info-command unit/introspection unit/introspection-2 unit/lazyfree unit/slowlog unit/pause
    unit/violations unit/protocol unit/hyperloglog unit/geo unit/dump unit/scripting unit/functions
    unit/type/stream unit/type/stream-cgroups unit/tracking integration/redis-cli integration/replication-buffer)
fi
tags="-slow -needs:debug -needs:repl -needs:save -needs:config-maxmemory -needs:config-resetstat -needs:reset"
tags="$tags -needs:latency -needs:local-process -needs:pfdebug"
# STRATA_SUITE_TAGS replaces the profile, e.g. "-slow -needs:debug" for TESTSUITE.md's profile B.
tags=${STRATA_SUITE_TAGS:-$tags}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
total_ok=0; total_err=0; total_ignored=0
start_server() {
  if [ "${STRATA_SUITE_SERVER:-strata}" = redis ]; then
    exec redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no
  fi
  exec "$binary" serve --config "$work/$name.toml"
}
for unit in "${units[@]}"; do
  name=${unit//\//_}
  port=$(free_port); admin=$(free_port)
  cat > "$work/$name.toml" <<CONFIG
[server]
data_dir = "$work/$name-data"
log_level = "warning"
[storage]
sync = "none"
[etcd]
enabled = false
[redis]
listen = "127.0.0.1:$port"
[iceberg]
enabled = false
[metrics]
listen = "127.0.0.1:$admin"
CONFIG
  start_server > "$work/$name.strata.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  # An [exception] ends a unit; the test that raised it counts as failed and the unit runs again without it
  # (a fresh server each time), so one missing command does not hide the checks after it.
  skips=(); raised=0
  for attempt in $(seq 12); do
    (cd "$work/tree" && timeout 900 ./runtest --host 127.0.0.1 --port "$port" --baseport $((port % 20000 + 21000)) \
      --tags "$tags" --ignore-encoding --ignore-digest --single "$unit" "${skips[@]}" > "$work/$name.log" 2>&1)
    sed -i 's/\x1b\[[0-9;]*m//g' "$work/$name.log"
    grep -q '^\[exception\]' "$work/$name.log" || break
    failed_test=$(grep -m1 -o '^"test [{"][^}"]*' "$work/$name.log" | sed 's/^"test [{"]//')
    [ -n "$failed_test" ] || break
    # The trace shows the test's source text: a name built from variables becomes a pattern.
    pattern=$failed_test
    if [[ $failed_test == *'$'* ]]; then
      pattern="/^$(printf '%s' "$failed_test" | sed -E 's/[][().*+?^|\\]/\\&/g; s/\$[A-Za-z_:]+/.*/g')\$"
    fi
    if [[ " ${skips[*]:-} " == *" $pattern "* ]]; then break; fi
    echo "[exception] $failed_test" >> "$work/$name.exceptions"
    skips+=(--skiptest "$pattern"); raised=$((raised + 1))
    kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    rm -rf "$work/$name-data"
    start_server >> "$work/$name.strata.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  done
  ok=$(grep -c '^\[ok\]' "$work/$name.log"); err=$(grep -c '^\[err\]\|^\[exception\]' "$work/$name.log")
  err=$((err + raised))
  ignored=$(grep -c '^\[ignore\]' "$work/$name.log")
  alive=yes; kill -0 "$pid" 2>/dev/null || alive="NO (crashed)"
  kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  printf '%-28s ok %4d  err %3d  ignored %3d  strata alive: %s\n' "$unit" "$ok" "$err" "$ignored" "$alive"
  total_ok=$((total_ok + ok)); total_err=$((total_err + err)); total_ignored=$((total_ignored + ignored))
done
echo "total: ok $total_ok, err $total_err, ignored $total_ignored"
