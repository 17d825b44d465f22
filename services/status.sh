#!/usr/bin/env bash
# One line per engine: name, state (up / down / foreign / unhealthy), url, pid.
#   up        - started by services/up.sh and answering
#   unhealthy - started by services/up.sh (pid alive) but not answering
#   foreign   - answering, but not started by services/up.sh
#   down      - nothing answering
# Usage: services/status.sh [engine...]   Exit status: 0 when every listed engine is up/foreign.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

status_one() (
  set -e
  load_engine "$1"
  adopt_own_pid 2>/dev/null
  local pid state rc=0
  pid="$(pid_read)"
  if [ -n "$pid" ] && pid_ours "$pid"; then
    if engine_healthy >/dev/null 2>&1; then state=up; else state=unhealthy; rc=1; fi
  else
    pid=""
    if engine_healthy >/dev/null 2>&1; then state=foreign; else state=down; rc=1; fi
  fi
  printf '%-22s %-9s %-55s %s\n' "$ENGINE" "$state" "$ENGINE_URL" "${pid:--}"
  exit "$rc"
)

main() {
  local engines=("$@")
  if [ "${#engines[@]}" -eq 0 ]; then
    mapfile -t engines < <(list_engines)
  fi
  printf '%-22s %-9s %-55s %s\n' ENGINE STATE URL PID
  local e r rc=0
  for e in "${engines[@]}"; do
    set +e; status_one "$e"; r=$?; set -e
    [ "$r" -eq 0 ] || rc=1
  done
  exit "$rc"
}

main "$@"
