#!/usr/bin/env bash
# Start the native dbbench services: install if needed, start, wait until healthy.
# Usage: services/up.sh [engine...]   (default: every engine; qdrant only when QDRANT_BIN is
# set; elasticsearch-cluster only when named)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Each engine runs in its own subshell with errexit on.  Callers must invoke
# these as plain statements (set +e; f; rc=$?; set -e): inside `if f` or
# `f || x` bash would silently disable errexit for the whole engine file.
up_one() (
  set -e
  load_engine "$1"
  phase=prepare
  trap 'rc=$?; if [ "$rc" -ne 0 ] && [ "$phase" = start ]; then tail_log; fi' EXIT

  if declare -F engine_available >/dev/null; then
    local reason rc=0
    reason="$(engine_available 2>&1)" || rc=$?
    if [ "$rc" -ne 0 ]; then
      say "skipped: ${reason:-not available on this machine}"
      exit 0
    fi
  fi

  engine_install

  adopt_own_pid
  local pid
  pid="$(pid_read)"
  if [ -n "$pid" ] && pid_ours "$pid"; then
    if engine_healthy; then
      say "already up (pid $pid): $ENGINE_URL"
      exit 0
    fi
    say "our process (pid $pid) is running but not healthy yet; waiting up to ${ENGINE_START_TIMEOUT}s"
    if wait_until "$ENGINE_START_TIMEOUT" engine_healthy; then
      say "up (pid $pid): $ENGINE_URL"
      exit 0
    fi
    tail_log "$ENGINE"
    die "pid $pid is running but did not become healthy within ${ENGINE_START_TIMEOUT}s"
  fi
  if [ -n "$pid" ]; then
    say "removing stale pid file (pid $pid is gone, or is no longer the process we started)"
    pid_clear "$ENGINE"
  fi

  if engine_healthy; then
    say "something else (not started by services/up.sh) already serves $ENGINE_URL; leaving it alone"
    exit 0
  fi
  # Optional: ENGINE_PORTS="host:port ..." lets us refuse to start on a busy port.
  local hp
  for hp in ${ENGINE_PORTS:-}; do
    if port_open "${hp%:*}" "${hp##*:}"; then
      die "port $hp is already in use by something we did not start (and it is not a healthy $ENGINE); not touching it"
    fi
  done

  say "starting (log: $LOG_FILE)"
  local t0=$SECONDS
  phase=start
  engine_start
  phase="wait"
  # Wait for health; bail out early if the process we started died.
  local deadline=$((SECONDS + ENGINE_START_TIMEOUT))
  while ! engine_healthy; do
    pid="$(pid_read)"
    if [ -n "$pid" ] && ! pid_ours "$pid"; then
      tail_log "$ENGINE"
      die "process $pid exited during startup"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail_log "$ENGINE"
      die "not healthy after ${ENGINE_START_TIMEOUT}s"
    fi
    sleep 1
  done
  say "up in $((SECONDS - t0))s (pid $(pid_read)): $ENGINE_URL"
)

url_of() ( load_engine "$1" >/dev/null 2>&1 && printf '%s\n' "$ENGINE_URL" )

main() {
  local engines=("$@")
  if [ "${#engines[@]}" -eq 0 ]; then
    mapfile -t engines < <(default_engines)
    if [ -z "${QDRANT_BIN:-}" ] && [ -f "$ENGINES_DIR/qdrant.sh" ]; then
      say "qdrant: skipped (set QDRANT_BIN to include it by default, or name it explicitly)"
    fi
    if [ -f "$ENGINES_DIR/elasticsearch-cluster.sh" ]; then
      say "elasticsearch-cluster: not started by default (3 nodes, ~2.4 GB; name it: services/up.sh elasticsearch-cluster)"
    fi
  fi
  [ "${#engines[@]}" -gt 0 ] || die "no engines found in $ENGINES_DIR"
  mkdir -p "$STATE"

  local e rc failed=()
  for e in "${engines[@]}"; do
    set +e; up_one "$e"; rc=$?; set -e
    [ "$rc" -eq 0 ] || failed+=("$e")
  done

  echo
  for e in "${engines[@]}"; do
    local mark=ok
    local f
    for f in "${failed[@]+"${failed[@]}"}"; do [ "$f" = "$e" ] && mark=FAILED; done
    printf '%-22s %-7s %s\n' "$e" "$mark" "$(url_of "$e" || true)"
  done
  if [ "${#failed[@]}" -gt 0 ]; then
    say "failed: ${failed[*]}"
    exit 1
  fi
}

main "$@"
