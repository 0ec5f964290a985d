#!/usr/bin/env bash
# Makes the Python virtual environments the end-to-end tests drive Strata with (pinned versions, under .build so a
# clean clone builds its own): redis-py 5.x (speaks RESP2) and the newest redis-py (RESP3 by default).
#   scripts/python-clients.sh [ROOT]   → ROOT/redis5, ROOT/redis8, ROOT/rq, ROOT/iceberg (default .build/pyclients)
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)/.build/pyclients}
install() {
  local name=$1; shift
  local marker="$root/$name/.installed-$(echo "$*" | tr ' =' '_-')"
  [ -e "$marker" ] && return 0
  rm -rf "${root:?}/$name"
  python3 -m venv "$root/$name"
  "$root/$name/bin/pip" install --quiet --disable-pip-version-check "$@"
  touch "$marker"
}
install redis5 redis==5.3.1
install redis8 redis==8.2.0
# A job queue on Redis: rq (its results live in streams) with the redis-py it resolves to.
install rq rq==2.6.0 redis==8.2.0
# pyiceberg (with pyarrow) and DuckDB with its iceberg, avro and httpfs extensions from their PyPI packages (the last
# ones published are for DuckDB 1.5.5), copied to ROOT/iceberg/duckdb-extensions so tests INSTALL them from files:
# nothing is downloaded at test time. jsonschema checks responses against the spec's shapes.
install iceberg "pyiceberg[pyarrow]==0.12.0" duckdb==1.5.5 duckdb-extension-iceberg==1.5.5 \
  duckdb-extension-avro==1.5.5 duckdb-extension-httpfs==1.5.5 jsonschema==4.25.1
extensions="$root/iceberg/duckdb-extensions"
if [ ! -e "$extensions/iceberg.duckdb_extension" ]; then
  mkdir -p "$extensions"
  cp "$root"/iceberg/lib/python3*/site-packages/duckdb_extension_*/extensions/v1.5.5/*.duckdb_extension "$extensions/"
fi
