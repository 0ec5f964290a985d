#!/usr/bin/env bash
# Makes the Python virtual environments the end-to-end tests drive Strata with (pinned versions, under .build so a
# clean clone builds its own): redis-py 5.x (speaks RESP2) and the newest redis-py (RESP3 by default).
#   scripts/python-clients.sh [ROOT]   → ROOT/redis5, ROOT/redis8 (default .build/pyclients)
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
