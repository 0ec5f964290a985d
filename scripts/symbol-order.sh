#!/usr/bin/env bash
# Regenerates scripts/strata.order: every function the release `strata` executes while it starts, serves a workload
# through etcdctl, curl and StrataEtcdBench, flushes when idle and shuts down — recorded with valgrind's callgrind.
# The release link (Package.swift) places these functions first, so the code a running server touches sits in a few
# MiB of contiguous pages instead of being scattered over the 25 MiB text segment, each page of it dragging in its
# 64 KiB neighbourhood (the kernel's fault-around). Run it after large code changes; names that no longer exist are
# ignored by the linker, so a stale list only orders less.
#
#   make symbol-order      (builds the release strata and StrataEtcdBench, then runs
#                           scripts/symbol-order.sh STRATA_BINARY STRATA_ETCD_BENCH_BINARY)
set -euo pipefail
strata=$(realpath "$1")
bench=$(realpath "$2")
cd "$(dirname "$0")/.."
scripts/apt-install.sh valgrind etcd-client curl
work=$(mktemp -d)
trap 'kill "${server:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
# valgrind cannot read the toolchain's DWARF; the symbol table is all it needs. Names stay mangled (--demangle=no):
# the linker matches them against symbols, and RocksDB's C++ functions (linked statically) are ordered too.
strip --strip-debug -o "$work/strata" "$strata"
source scripts/temp-config.sh
temp_config "$work"
valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/callgrind.out" "$work/strata" serve --config "$work/config.toml" \
  > "$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 300); do curl -sf -o /dev/null "127.0.0.1:$admin_port/health" && break; sleep 1; done
scripts/profile-workload.sh "127.0.0.1:$etcd_port" "127.0.0.1:$admin_port" "$bench"
sleep 15  # the idle flush
kill -TERM "$server"
wait "$server" || true
python3 - "$work/callgrind.out" "$work/strata" > scripts/strata.order <<'PY'
import re, sys
names, executed, objects, current = {}, set(), {}, None
for line in open(sys.argv[1], errors="replace"):
    if line.startswith(("ob=", "cob=")):
        m = re.match(r"c?ob=\((\d+)\)(?: (.*))?", line.strip())
        if m and m.group(2):
            objects[m.group(1)] = m.group(2)
        if line.startswith("ob=") and m:
            current = objects.get(m.group(1))
    elif line.startswith(("fn=", "cfn=")):
        m = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line.strip())
        if not m:
            continue
        if m.group(2):
            names[m.group(1)] = m.group(2)
        if line.startswith("fn=") and current == sys.argv[2]:
            executed.add(re.sub(r"'\d+$", "", names[m.group(1)]))
print("\n".join(sorted(executed)))
PY
echo "scripts/strata.order: $(wc -l < scripts/strata.order) functions"
