#!/usr/bin/env bash
# Stop the native dbbench services that services/up.sh started (pid files only).
# Data directories are kept.   Usage: services/down.sh [engine...]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

down_one() (
  set -e
  load_engine "$1"
  adopt_own_pid
  local pid
  pid="$(pid_read)"
  if [ -z "$pid" ]; then
    say "not running (no pid file; nothing to stop)"
    exit 0
  fi
  if ! pid_ours "$pid"; then
    if pid_alive "$pid"; then
      say "stale pid file: pid $pid is alive but is not the process we started; not signalling it, removing pid file"
    else
      say "not running (stale pid $pid); removing pid file"
    fi
    pid_clear "$ENGINE"
    exit 0
  fi
  say "stopping pid $pid"
  local rc
  set +e; ( set -e; engine_stop ); rc=$?; set -e
  [ "$rc" -eq 0 ] || warn "engine_stop returned $rc"
  # engine_stop may ask the server to stop by its own means (pg_ctl); make sure.
  if ! wait_until "$ENGINE_STOP_TIMEOUT" pid_gone "$pid"; then
    stop_pid "$pid" 15 || warn "pid $pid is still alive"
  fi
  pid_clear "$ENGINE"
  say "stopped (data kept in $ENGINE_DIR)"
)

main() {
  local engines=("$@")
  if [ "${#engines[@]}" -eq 0 ]; then
    # every engine that has a pid file, so qdrant is included when up started it
    mapfile -t engines < <(list_engines)
  fi
  local e r rc=0
  for e in "${engines[@]}"; do
    set +e; down_one "$e"; r=$?; set -e
    [ "$r" -eq 0 ] || rc=1
  done
  exit "$rc"
}

main "$@"
