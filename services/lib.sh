# shellcheck shell=bash
# Common helpers for the dbbench native service launchers.
# Sourced by up.sh / down.sh / status.sh (and, through them, by engine files).

# Repo root = the directory above services/.
SERVICES_HOME="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SERVICES_HOME/.." && pwd)"
STATE="${DBBENCH_SERVICES_DIR:-$ROOT/.services}"
# Absolute: engine files change folders, and a relative state folder would then name
# another one.
case "$STATE" in /*) ;; *) STATE="$PWD/$STATE" ;; esac
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

# A pid file holds two lines: the pid, and that process's start time (field 22
# of /proc/PID/stat, clock ticks since boot). The start time is what makes a
# pid ours: after a reboot or a crash the same number may belong to anything.

# pid_read [ENGINE]: print the pid recorded in the pid file (empty if none).
pid_read() {
  local f; f="$(pid_file "${1:-$ENGINE}")"
  [ -s "$f" ] || return 0
  head -n 1 "$f" | tr -dc '0-9'
}

# pid_recorded_start [ENGINE]: the start time recorded beside the pid (empty
# for pid files written before start times were recorded).
pid_recorded_start() {
  local f; f="$(pid_file "${1:-$ENGINE}")"
  [ -s "$f" ] || return 0
  sed -n 2p "$f" | tr -dc '0-9'
}

# pid_stat_field PID N: field N of /proc/PID/stat, counted after the
# parenthesised command name (which may itself hold spaces): 1 = state,
# 3 = process group, 20 = start time.
pid_stat_field() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  local n="$2"
  # shellcheck disable=SC2086 # split the fields on purpose
  set -- $stat
  [ "$n" -le "$#" ] || return 1
  printf '%s\n' "${!n}"
}

# pid_start_time PID: the process's start time, as recorded by pid_write.
pid_start_time() { pid_stat_field "$1" 20; }

# pid_write PID [ENGINE]: record PID and its start time.
pid_write() {
  local f; f="$(pid_file "${2:-$ENGINE}")"
  mkdir -p "$(dirname "$f")"
  printf '%s\n%s\n' "$1" "$(pid_start_time "$1" || true)" >"$f.tmp"
  mv -f "$f.tmp" "$f"
}

pid_clear() { rm -f "$(pid_file "${1:-$ENGINE}")"; }

# pid_alive PID: the process exists (and is not a zombie).
pid_alive() {
  local pid="$1"
  [ -n "$pid" ] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [ "$(pid_stat_field "$pid" 1 2>/dev/null || true)" != Z ]
}

pid_gone() { ! pid_alive "$1"; }

# pid_in_dir PID DIR: the process runs from DIR (its working directory is DIR
# or below) or names DIR on its command line. Every launcher starts its server
# from, or pointed at, its own $STATE/<engine>.
pid_in_dir() {
  local pid="$1" dir real cwd
  dir="$2"
  real="$(cd "$dir" 2>/dev/null && pwd -P)" || real="$dir"
  cwd="$(readlink "/proc/$pid/cwd" 2>/dev/null || true)"
  case "$cwd/" in "$real"/*|"$dir"/*) return 0 ;; esac
  local args
  args="$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null || true)"
  printf '%s\n' "$args" | grep -qF -e "$real/" -e "$dir/" ||
    printf '%s\n' "$args" | grep -qxF -e "$real" -e "$dir"
}

# pid_ours PID [ENGINE]: PID is alive AND is the process we started: its start
# time is the one recorded in the pid file (when the file has one), and it runs
# from or names the engine's state dir. Nothing is ever signalled without this.
pid_ours() {
  local pid="$1" engine="${2:-$ENGINE}" want
  pid_alive "$pid" || return 1
  want="$(pid_recorded_start "$engine")"
  if [ -n "$want" ] && [ "$(pid_start_time "$pid" || true)" != "$want" ]; then
    return 1
  fi
  pid_in_dir "$pid" "$(engine_dir "$engine")"
}

# our_pid_alive [ENGINE]: the pid file names a live process that is ours.
our_pid_alive() { pid_ours "$(pid_read "${1:-$ENGINE}")" "${1:-$ENGINE}"; }

# stop_pid PID SECONDS [group]: SIGTERM, wait up to SECONDS for it to exit,
# then SIGKILL. With "group", SIGKILL goes to the whole process group when PID
# leads one (setsid made it so), so children die with it. Ownership is checked
# before every signal, so a pid that exits and is reused meanwhile is left alone.
# The one stop routine: every launcher's engine_stop, and down.sh's last
# resort, come here.
stop_pid() {
  local pid="$1" timeout="$2" group="${3:-}"
  pid_ours "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + timeout))
  while pid_alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.25; done
  pid_ours "$pid" || return 0
  warn "pid $pid did not exit within ${timeout}s of SIGTERM; sending SIGKILL"
  if [ "$group" = group ] && [ "$(pid_stat_field "$pid" 3 || true)" = "$pid" ]; then
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  else
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait_until 5 pid_gone "$pid"
}

# stop_engine_pid: stop_pid on the engine's recorded pid, with the engine's
# ENGINE_STOP_TIMEOUT (default 60 s) and ENGINE_STOP_GROUP; the default
# engine_stop.
stop_engine_pid() {
  local pid; pid="$(pid_read)"
  [ -n "$pid" ] || return 0
  local group=""
  [ "${ENGINE_STOP_GROUP:-0}" != 1 ] || group=group
  stop_pid "$pid" "${ENGINE_STOP_TIMEOUT:-60}" $group
}

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

# default_engines: every engine, minus qdrant unless QDRANT_BIN is set (no registry
# ships its server), and minus elasticsearch-cluster (three more Elasticsearch nodes,
# ~2.4 GB, for the workloads that compare a cluster; name it to start it).
default_engines() {
  local e
  for e in $(list_engines); do
    if [ "$e" = qdrant ] && [ -z "${QDRANT_BIN:-}" ]; then continue; fi
    if [ "$e" = elasticsearch-cluster ]; then continue; fi
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
  ENGINE_STOP_TIMEOUT=""
  ENGINE_STOP_GROUP=""
  # shellcheck source=/dev/null
  . "$f"
  local fn
  for fn in engine_install engine_start engine_healthy; do
    declare -F "$fn" >/dev/null || die "$f does not define $fn"
  done
  # shellcheck disable=SC2317 # called by down.sh
  declare -F engine_stop >/dev/null || engine_stop() { stop_engine_pid; }
  : "${ENGINE_START_TIMEOUT:=120}"
  : "${ENGINE_STOP_TIMEOUT:=60}"
}

# adopt_own_pid: when the pid file is missing or stale but the engine's
# optional `engine_own_pid` hook names a live server that is provably ours
# (e.g. postmaster.pid inside our own data dir), rewrite the pid file.
adopt_own_pid() {
  declare -F engine_own_pid >/dev/null || return 0
  our_pid_alive "$ENGINE" && return 0
  local p
  p="$(engine_own_pid 2>/dev/null || true)"
  if [ -n "$p" ] && pid_alive "$p" && pid_in_dir "$p" "$ENGINE_DIR"; then
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
