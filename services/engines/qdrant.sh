# shellcheck shell=bash disable=SC2034 # ENGINE_* variables are read by lib.sh / up.sh
# Qdrant server for dbbench, from a binary the user provides.
# Sourced by services/up.sh after services/lib.sh.
#
# No package registry ships the Qdrant server, so this file installs nothing: point
# QDRANT_BIN at a qdrant executable (a release build of the server, version 1.16.x
# matches the client dbbench is built with). Without it the engine is skipped.
# The server listens on 127.0.0.1 only (REST 6333, gRPC 6334), telemetry off, data in
# $STATE/qdrant/storage.

QDRANT_HOST=127.0.0.1
QDRANT_HTTP_PORT="${QDRANT_HTTP_PORT:-6333}"
QDRANT_GRPC_PORT="${QDRANT_GRPC_PORT:-6334}"
ENGINE_URL="http://${QDRANT_HOST}:${QDRANT_GRPC_PORT}"
ENGINE_PORTS="${QDRANT_HOST}:${QDRANT_HTTP_PORT} ${QDRANT_HOST}:${QDRANT_GRPC_PORT}"
ENGINE_START_TIMEOUT="${ENGINE_START_TIMEOUT:-60}"
# Stop: the shared stop_pid (lib.sh), SIGKILL after 15 s.
ENGINE_STOP_TIMEOUT=15

_qdrant_dir() { printf '%s/qdrant' "${STATE:?STATE not set}"; }

engine_available() {
    if [ -z "${QDRANT_BIN:-}" ]; then
        echo "QDRANT_BIN is not set: no registry ships the Qdrant server; set QDRANT_BIN=/path/to/qdrant (or use docker-compose.bench.yml)"
        return 1
    fi
    if [ ! -x "$QDRANT_BIN" ]; then
        echo "QDRANT_BIN=$QDRANT_BIN is not an executable file"
        return 1
    fi
}

engine_install() {
    # Nothing to install: the binary comes from QDRANT_BIN (checked by engine_available).
    mkdir -p "$(_qdrant_dir)/storage" "$(_qdrant_dir)/snapshots"
}

engine_start() {
    local d; d="$(_qdrant_dir)"
    if our_pid_alive; then return 0; fi   # already running
    mkdir -p "$d/storage" "$d/snapshots"
    # Run from the state dir: the server writes ./config and temporary files beside
    # itself when it has no config file, and must not write into the repo.
    ( cd "$d" || exit 1
      QDRANT__SERVICE__HOST="$QDRANT_HOST" \
      QDRANT__SERVICE__HTTP_PORT="$QDRANT_HTTP_PORT" \
      QDRANT__SERVICE__GRPC_PORT="$QDRANT_GRPC_PORT" \
      QDRANT__TELEMETRY_DISABLED=true \
      QDRANT__STORAGE__STORAGE_PATH="$d/storage" \
      QDRANT__STORAGE__SNAPSHOTS_PATH="$d/snapshots" \
        setsid nohup "$QDRANT_BIN" >>"$d/log" 2>&1 </dev/null &
      pid_write "$!" )
}

engine_healthy() {
    http_ok "http://${QDRANT_HOST}:${QDRANT_HTTP_PORT}/readyz"
}
