#!/usr/bin/env bash
# Runs units of Redis 7.0's own Tcl test suite the way Redis's CI runs them on its own build: the harness starts
# the server itself (from tests/assets/default.conf and each test's overrides, restarting it, reading its files),
# with Strata in place of src/redis-server (the `redis-server` personality). This reaches the `external:skip`
# units that need that, such as unit/acl, unit/acl-v2 and unit/auth:
#   scripts/redis-suite-harness.sh SUITE_DIR unit [unit ...]
# (STRATA_SUITE_SERVER=redis runs Debian's redis-server instead: the number of checks to compare with.)
# Prints ok / err per unit; the harness's output goes to .build/redis-suite-harness/<unit>.log.
set -uo pipefail
suite=${1:?usage: scripts/redis-suite-harness.sh SUITE_DIR unit [unit ...]}
shift
[ $# -gt 0 ] || { echo "name at least one unit" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
binary=${STRATA_BINARY:-$root/.build/debug/strata}
[ "${STRATA_SUITE_SERVER:-strata}" = redis ] && binary=/usr/bin/redis-server
work=$root/.build/redis-suite-harness
rm -rf "$work" && mkdir -p "$work"
cp -r "$suite" "$work/tree"
mkdir -p "$work/tree/src"
ln -sf "$binary" "$work/tree/src/redis-server"
ln -sf "$(command -v redis-cli)" "$work/tree/src/redis-cli"
ln -sf "$(command -v redis-benchmark)" "$work/tree/src/redis-benchmark"
total_ok=0; total_err=0
for unit in "$@"; do
  name=${unit//\//_}
  (cd "$work/tree" && timeout 900 ./runtest --single "$unit" --clients 1 --baseport 29000 \
    --tags "-slow -needs:debug -needs:repl" > "$work/$name.log" 2>&1)
  ok=$(grep -ac '\[ok\]' <(sed 's/\x1b\[[0-9;]*m//g' "$work/$name.log"))
  # (The harness prints each failure twice, the second time in its summary after "*** ": count the first.)
  err=$(grep -acE '^\[(err|exception)\]' <(sed 's/\x1b\[[0-9;]*m//g' "$work/$name.log"))
  echo "$unit: ok $ok, err $err"
  total_ok=$((total_ok + ok)); total_err=$((total_err + err))
done
echo "total: ok $total_ok, err $total_err"
