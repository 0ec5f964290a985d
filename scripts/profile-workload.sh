#!/usr/bin/env bash
# A little of everything a running Strata does, for profiles (scripts/symbol-order.sh): etcdctl's commands, the
# gRPC gateway and admin endpoints over HTTP, and every StrataEtcdBench scenario at a small scale.
#
#   scripts/profile-workload.sh ETCD_HOST:PORT ADMIN_HOST:PORT STRATA_ETCD_BENCH [SCALE]
set -uo pipefail
endpoint=$1 admin=$2 bench=$3 scale=${4:-0.02}
ctl() { ETCDCTL_API=3 etcdctl --endpoints "$endpoint" "$@" > /dev/null 2>&1; }
snapshot=$(mktemp)
trap 'rm -f "$snapshot"' EXIT

ctl put a 1
ctl put b 2 --prev-kv
ctl get a --prefix --sort-by=MODIFY --order=DESCEND
ctl get "" --from-key --keys-only --limit 5
ctl get a --rev 2 -w json
ctl get a --prefix --count-only
printf 'value("a") = "1"\n\nput a 3\n\nput a 4\n\n' | ctl txn
lease=$(ETCDCTL_API=3 etcdctl --endpoints "$endpoint" lease grant 60 | awk '{print $2}')
ctl put l 1 --lease="$lease"
ctl lease keep-alive --once "$lease"
ctl lease timetolive --keys "$lease"
ctl lease list
ctl lease revoke "$lease"
timeout 3 env ETCDCTL_API=3 etcdctl --endpoints "$endpoint" watch --prefix a --rev 1 --prev-kv > /dev/null &
sleep 1
ctl put a 5
wait
ctl del a --prev-kv
ctl compaction 3
ctl compaction --physical 4
ctl endpoint health
ctl endpoint status -w json
ctl member list
ctl alarm list
ctl defrag
ctl endpoint hashkv
ctl snapshot save "$snapshot"
ctl auth status
ctl user list
ctl move-leader 1
ctl check perf --load=s &
check=$!

for path in metrics health readyz version; do curl -s -o /dev/null "http://$admin/$path"; done
for path in health version; do curl -s -o /dev/null "http://$endpoint/$path"; done
curl -s -o /dev/null -X POST "http://$endpoint/v3/kv/put" -d '{"key":"Zm9v","value":"YmFy"}'
curl -s -o /dev/null -X POST "http://$endpoint/v3/kv/range" -d '{"key":"Zm9v"}'
curl -s -o /dev/null -X POST "http://$endpoint/v3/kv/range" -d '{bad json'
timeout 2 curl -s -N -o /dev/null -X POST "http://$endpoint/v3/watch" -d '{"create_request":{"key":"Zm9v"}}'
for scenario in seq-put put get range txn watch; do
  "$bench" --endpoint "$endpoint" --scenario "$scenario" --scale "$scale" > /dev/null 2>&1
done
wait "$check"
exit 0
