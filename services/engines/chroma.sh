# shellcheck shell=bash disable=SC2034 # ENGINE_* variables are read by lib.sh / up.sh
# Chroma native server (pip package chromadb, pinned) for dbbench.
# Sourced by services/up.sh after services/lib.sh; needs only ROOT and STATE.
# Binds to 127.0.0.1:8000. Telemetry off. No auth.

CHROMA_VERSION="${CHROMA_VERSION:-1.5.9}"
CHROMA_HOST=127.0.0.1
CHROMA_PORT="${CHROMA_PORT:-8000}"
ENGINE_URL="http://${CHROMA_HOST}:${CHROMA_PORT}"
ENGINE_START_TIMEOUT="${ENGINE_START_TIMEOUT:-60}"
# Stop: the shared stop_pid (lib.sh); SIGKILL, if needed, to the whole process group.
ENGINE_STOP_TIMEOUT=10
ENGINE_STOP_GROUP=1

_chroma_dir() { printf '%s/chroma' "${STATE:?STATE not set}"; }
_chroma_bin() { printf '%s/venv/bin/chroma' "$(_chroma_dir)"; }

_chroma_installed() {
    # The pip package version is what we pin. (`chroma --version` reports the
    # bundled Rust CLI's own version, e.g. "chroma 1.4.4" for chromadb 1.5.9,
    # so it cannot be used for this check.)
    local d; d="$(_chroma_dir)"
    [ -x "$(_chroma_bin)" ] || return 1
    compgen -G "$d/venv/lib/python3*/site-packages/chromadb-${CHROMA_VERSION}.dist-info" >/dev/null
}

engine_install() {
    local d; d="$(_chroma_dir)"
    if _chroma_installed; then return 0; fi
    mkdir -p "$d"
    if [ ! -x "$d/venv/bin/python" ]; then
        python3 -m venv "$d/venv" || { echo "chroma: python3 -m venv failed (apt-get install python3-venv?)" >&2; return 1; }
    fi
    "$d/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "chromadb==${CHROMA_VERSION}" || return 1
    _chroma_installed || { echo "chroma: installed, but $(_chroma_bin) does not report ${CHROMA_VERSION}" >&2; return 1; }
}

engine_start() {
    local d; d="$(_chroma_dir)"
    mkdir -p "$d/data"
    if our_pid_alive; then return 0; fi   # already running
    ( cd "$d" || exit 1
      ANONYMIZED_TELEMETRY=False CHROMA_TELEMETRY_ENABLED=false \
        setsid nohup "$(_chroma_bin)" run --path "$d/data" \
            --host "$CHROMA_HOST" --port "$CHROMA_PORT" \
            >>"$d/log" 2>&1 </dev/null &
      pid_write "$!" )
}

engine_healthy() {
    curl -fs -m 2 -o /dev/null "${ENGINE_URL}/api/v2/heartbeat"
}
