# shellcheck shell=bash disable=SC2034 # ENGINE_* variables are read by lib.sh / up.sh
# Elasticsearch 8.14.1 for dbbench, without Docker.
#
# Sourced by services/up.sh after services/lib.sh; uses only ROOT and STATE.
# Install: Maven resolves Elastic's "integ-test-zip" distribution (the official
# 8.14.1 server + modules transport-netty4, x-pack-core, x-pack-security, apm;
# no bundled JDK) from Maven Central via services/elasticsearch/pom.xml, and it
# is unzipped into $STATE/elasticsearch/dist. Runs on the system JDK (17+).
# Elasticsearch refuses to run as root, so when we are root the node runs as the
# system user $ES_RUN_AS (created on install).
# Binds HTTP to 127.0.0.1:9200 and transport to 127.0.0.1:9300, single node,
# security off (plain http, no auth). See services/elasticsearch/NOTES.md.

ES_VERSION="${ES_VERSION:-8.14.1}"
ES_HTTP_PORT="${ES_HTTP_PORT:-9200}"
ES_TRANSPORT_PORT="${ES_TRANSPORT_PORT:-9300}"
ES_HEAP="${ES_HEAP:-1g}"
ES_RUN_AS="${ES_RUN_AS:-dbbench}"
ENGINE_URL="http://127.0.0.1:${ES_HTTP_PORT}"
# First start takes ~11 s on 2 cores; later ones are similar. Be generous.
ENGINE_START_TIMEOUT="${ENGINE_START_TIMEOUT:-180}"
# Stop: the shared stop_pid (lib.sh). SIGTERM to the launcher JVM stops the server
# JVM cleanly in ~2 s; SIGKILL, after 60 s, goes to the whole process group.
ENGINE_STOP_TIMEOUT=60
ENGINE_STOP_GROUP=1

_es_dir()  { printf '%s/elasticsearch' "${STATE:?STATE not set}"; }
_es_home() { printf '%s/dist/elasticsearch-%s' "$(_es_dir)" "$ES_VERSION"; }

_es_java_home() {
    if [ -n "${ES_JAVA_HOME:-}" ]; then printf '%s' "$ES_JAVA_HOME"; return; fi
    if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then printf '%s' "$JAVA_HOME"; return; fi
    local j; j="$(command -v java)" || return 1
    j="$(readlink -f "$j")"
    printf '%s' "${j%/bin/java}"
}

# Run a command as the unprivileged user when we are root; as ourselves otherwise.
_es_as_user() {
    if [ "$(id -u)" = 0 ]; then
        setpriv --reuid="$ES_RUN_AS" --regid="$ES_RUN_AS" --init-groups -- "$@"
    else
        "$@"
    fi
}

_es_ensure_user() {
    [ "$(id -u)" = 0 ] || return 0
    id "$ES_RUN_AS" >/dev/null 2>&1 && return 0
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$ES_RUN_AS"
}

engine_install() {
    local d home zip
    d="$(_es_dir)"; home="$(_es_home)"
    _es_ensure_user || { echo "elasticsearch: cannot create user $ES_RUN_AS" >&2; return 1; }
    if [ -f "$home/lib/elasticsearch-${ES_VERSION}.jar" ]; then return 0; fi
    command -v mvn >/dev/null || { echo "elasticsearch: mvn not found" >&2; return 1; }
    mkdir -p "$d/download" "$d/dist"
    zip="$d/download/elasticsearch-${ES_VERSION}.zip"
    if [ ! -s "$zip" ]; then
        mvn -q -B -f "$ROOT/services/elasticsearch/pom.xml" \
            -Delasticsearch.version="$ES_VERSION" \
            dependency:copy-dependencies -DoutputDirectory="$d/download" || return 1
    fi
    [ -s "$zip" ] || { echo "elasticsearch: $zip missing after mvn" >&2; return 1; }
    rm -rf "$home.partial" && mkdir -p "$home.partial"
    if command -v unzip >/dev/null; then
        unzip -q "$zip" -d "$home.partial" || return 1
    else
        python3 - "$zip" "$home.partial" <<'PY' || return 1
import sys, zipfile, os
z = zipfile.ZipFile(sys.argv[1])
for i in z.infolist():
    p = z.extract(i, sys.argv[2])
    mode = (i.external_attr >> 16) & 0o777
    if mode:
        os.chmod(p, mode)
PY
    fi
    mv "$home.partial/elasticsearch-${ES_VERSION}" "$home" && rmdir "$home.partial"
    chmod -R a+rX "$home"
    rm -f "$zip"   # ~88 MB; Maven keeps its own copy in ~/.m2
    [ -f "$home/lib/elasticsearch-${ES_VERSION}.jar" ]
}

# (Re)write the node's config dir from the distribution's defaults + our settings.
_es_write_config() {
    local d home conf
    d="$(_es_dir)"; home="$(_es_home)"; conf="$d/config"
    mkdir -p "$conf" "$d/data" "$d/logs" "$d/tmp" "$d/snapshots"
    [ -f "$conf/log4j2.properties" ] || cp "$home/config/log4j2.properties" "$conf/"
    mkdir -p "$conf/jvm.options.d"
    # The stock jvm.options writes gc.log / heap dumps relative to the working
    # directory; point them into our logs dir.
    sed -e "s#file=logs/gc.log#file=$d/logs/gc.log#" \
        -e "s#HeapDumpPath=data#HeapDumpPath=$d/logs#" \
        -e "s#ErrorFile=logs/#ErrorFile=$d/logs/#" \
        "$home/config/jvm.options" >"$conf/jvm.options"
    cat >"$conf/elasticsearch.yml" <<EOF
# Written by services/engines/elasticsearch.sh on every start; edits are lost.
cluster.name: dbbench
node.name: dbbench-es
path.data: $d/data
path.logs: $d/logs
# Snapshot repositories (dbbench's backups: one fs repository per collection, in a
# folder of its own under this one).
path.repo: $d/snapshots
network.host: 127.0.0.1
http.port: $ES_HTTP_PORT
transport.port: $ES_TRANSPORT_PORT
discovery.type: single-node
xpack.security.enabled: false
# A benchmark box's disk may be fuller than 85/90/95 %; don't let the disk
# watermarks block shard allocation or mark indices read-only mid-run.
cluster.routing.allocation.disk.threshold_enabled: false
EOF
    if [ "$(id -u)" = 0 ]; then
        chown -R "$ES_RUN_AS:$ES_RUN_AS" "$conf" "$d/data" "$d/logs" "$d/tmp" "$d/snapshots"
    fi
}

engine_start() {
    local d home jh
    d="$(_es_dir)"; home="$(_es_home)"
    if our_pid_alive; then return 0; fi   # already running
    [ -f "$home/lib/elasticsearch-${ES_VERSION}.jar" ] || { echo "elasticsearch: not installed" >&2; return 1; }
    jh="$(_es_java_home)" || { echo "elasticsearch: no java found" >&2; return 1; }
    _es_write_config || return 1
    # Elasticsearch wants vm.max_map_count >= 262144 (mmapped Lucene files).
    # Below that it only warns (loopback = dev mode) but large indices can fail
    # to mmap. Raise it best-effort when root; ES_SET_MAX_MAP_COUNT=0 to skip.
    if [ "$(id -u)" = 0 ] && [ "${ES_SET_MAX_MAP_COUNT:-1}" = 1 ] \
        && [ "$(cat /proc/sys/vm/max_map_count 2>/dev/null || echo 0)" -lt 262144 ]; then
        sysctl -qw vm.max_map_count=262144 2>/dev/null || true
    fi
    if [ "$(id -u)" = 0 ] && ! _es_as_user test -w "$d/data"; then
        echo "elasticsearch: user $ES_RUN_AS cannot reach $d/data (a parent directory is not world-searchable?)" >&2
        return 1
    fi
    local -a runas=()
    if [ "$(id -u)" = 0 ]; then
        runas=(setpriv --reuid="$ES_RUN_AS" --regid="$ES_RUN_AS" --init-groups --)
    fi
    # setsid without a fork keeps $! == the launcher JVM (bin/elasticsearch
    # execs java), which is also the process-group leader. The launcher starts
    # the server JVM as its child and stops it when it gets SIGTERM.
    ( cd "$d" || exit 1
      ES_JAVA_HOME="$jh" ES_PATH_CONF="$d/config" ES_TMPDIR="$d/tmp" \
      ES_JAVA_OPTS="-Xms${ES_HEAP} -Xmx${ES_HEAP} ${ES_EXTRA_JAVA_OPTS:-}" \
      setsid nohup "${runas[@]}" "$home/bin/elasticsearch" >>"$d/log" 2>&1 </dev/null &
      pid_write "$!" )
}

engine_healthy() {
    curl -fs -m 3 "${ENGINE_URL}/_cluster/health?wait_for_status=yellow&timeout=1s" 2>/dev/null \
        | grep -qE '"status":"(yellow|green)"'
}
