# shellcheck shell=bash
# Common helpers for the dbbench native service launchers.
# Sourced by up.sh / down.sh / status.sh (and, through them, by engine files).

# Repo root = the directory above services/.
SERVICES_HOME="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SERVICES_HOME/.." && pwd)"
STATE="${DBBENCH_SERVICES_DIR:-$ROOT/.services}"
ENGINES_DIR="$SERVICES_HOME/engines"
export ROOT STATE

say() { printf '[%s] %s\n' "${ENGINE:-services}" "$*" >&2; }
warn() { printf '[%s] WARNING: %s\n' "${ENGINE:-services}" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "${ENGINE:-services}" "$*" >&2; exit 1; }

have() { command -v "$1" >/dev/null 2>&1; }

# Run a command as root (directly when we are root, else through sudo).
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif have sudo; then
    sudo -n "$@"
  else
    die "need root to run: $* (no sudo available)"
  fi
}

# wait_until TIMEOUT_SECONDS CMD [ARG...]: retry CMD once a second until it
# succeeds (return 0) or the timeout passes (return 1).
wait_until() {
  local timeout="$1"; shift
  local deadline=$((SECONDS + timeout))
  while true; do
    if "$@"; then return 0; fi
    if [ "$SECONDS" -ge "$deadline" ]; then return 1; fi
    sleep 1
  done
}

# port_open HOST PORT: something accepts TCP connections there.
port_open() {
  local host="$1" port="$2"
  # shellcheck disable=SC2016 # expanded by the inner bash
  if have timeout; then
    timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$host" "$port" 2>/dev/null
  else
    bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$host" "$port" 2>/dev/null
  fi
}

# http_ok URL: GET returns a 2xx status.
http_ok() {
  local url="$1"
  if have curl; then
    curl -fsS -o /dev/null --max-time 5 "$url" 2>/dev/null
  elif have python3; then
    python3 - "$url" <<'PY' 2>/dev/null
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
        sys.exit(0 if 200 <= r.status < 300 else 1)
except Exception:
    sys.exit(1)
PY
  else
    die "http_ok needs curl or python3"
  fi
}

# ---- per-engine paths and pid-file helpers --------------------------------
# engine_dir [ENGINE] -> $STATE/<engine>
engine_dir() { printf '%s/%s\n' "$STATE" "${1:-$ENGINE}"; }
pid_file() { printf '%s/pid\n' "$(engine_dir "${1:-$ENGINE}")"; }
log_file() { printf '%s/log\n' "$(engine_dir "${1:-$ENGINE}")"; }

# pid_read [ENGINE]: print the pid recorded in the pid file (empty if none).
pid_read() {
  local f; f="$(pid_file "${1:-$ENGINE}")"
  [ -s "$f" ] || return 0
  tr -dc '0-9' <"$f"
}

# pid_write PID [ENGINE]
pid_write() {
  local f; f="$(pid_file "${2:-$ENGINE}")"
  mkdir -p "$(dirname "$f")"
  printf '%s\n' "$1" >"$f"
}

pid_clear() { rm -f "$(pid_file "${1:-$ENGINE}")"; }

# pid_alive PID: the process exists (and is not a zombie).
pid_alive() {
  local pid="$1"
  [ -n "$pid" ] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [ -r "/proc/$pid/stat" ]; then
    # field 3 is the state; Z = zombie
    local st; st="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)"
    [ "$st" != "Z" ] || return 1
  fi
  return 0
}

pid_gone() { ! pid_alive "$1"; }

# our_pid_alive [ENGINE]: the pid file names a live process.
our_pid_alive() { pid_alive "$(pid_read "${1:-$ENGINE}")"; }

# tail_log [ENGINE] [N]: print the last N (default 40) lines of the engine log.
tail_log() {
  local f; f="$(log_file "${1:-$ENGINE}")"
  local n="${2:-40}"
  if [ -s "$f" ]; then
    printf -- '----- last %s lines of %s -----\n' "$n" "$f" >&2
    tail -n "$n" "$f" >&2
    printf -- '----- end of log -----\n' >&2
  else
    say "no log at $f"
  fi
}

# list_engines: names of every engine file, sorted.
list_engines() {
  local f
  for f in "$ENGINES_DIR"/*.sh; do
    [ -e "$f" ] || continue
    basename "$f" .sh
  done
}

# default_engines: every engine, minus qdrant unless QDRANT_BIN is set.
default_engines() {
  local e
  for e in $(list_engines); do
    if [ "$e" = qdrant ] && [ -z "${QDRANT_BIN:-}" ]; then continue; fi
    printf '%s\n' "$e"
  done
}

# load_engine NAME: source the engine file (call inside a subshell).
load_engine() {
  ENGINE="$1"
  local f="$ENGINES_DIR/$ENGINE.sh"
  [ -f "$f" ] || die "unknown engine '$ENGINE' (no $f; have: $(list_engines | tr '\n' ' '))"
  ENGINE_DIR="$(engine_dir "$ENGINE")"
  PID_FILE="$ENGINE_DIR/pid"
  LOG_FILE="$ENGINE_DIR/log"
  export ENGINE ENGINE_DIR PID_FILE LOG_FILE
  mkdir -p "$ENGINE_DIR"
  # shellcheck disable=SC2034 # set by the engine file, read by callers
  ENGINE_URL=""
  ENGINE_START_TIMEOUT=""
  # shellcheck source=/dev/null
  . "$f"
  local fn
  for fn in engine_install engine_start engine_healthy engine_stop; do
    declare -F "$fn" >/dev/null || die "$f does not define $fn"
  done
  : "${ENGINE_START_TIMEOUT:=120}"
}

# adopt_own_pid: when the pid file is missing or stale but the engine's
# optional `engine_own_pid` hook names a live server that is provably ours
# (e.g. postmaster.pid inside our own data dir), rewrite the pid file.
adopt_own_pid() {
  declare -F engine_own_pid >/dev/null || return 0
  our_pid_alive "$ENGINE" && return 0
  local p
  p="$(engine_own_pid 2>/dev/null || true)"
  if [ -n "$p" ] && pid_alive "$p"; then
    pid_write "$p" "$ENGINE"
    say "re-adopted our own running server (pid $p) into $(pid_file "$ENGINE")"
  fi
}

# engine_is_available: honours the optional engine_available hook.
engine_is_available() {
  if declare -F engine_available >/dev/null; then
    engine_available
  else
    return 0
  fi
}
