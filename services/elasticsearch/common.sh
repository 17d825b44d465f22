# shellcheck shell=bash
# What the Elasticsearch launchers share: services/engines/elasticsearch.sh (one node)
# and services/engines/elasticsearch-cluster.sh (three nodes) source this file, and so
# does the cluster's supervisor (cluster-supervisor.sh).
#
# One distribution serves both: installed once, under $STATE/elasticsearch/dist, by
# whichever launcher runs first. Each node has a folder of its own holding its config/,
# data/, logs/ and tmp/; es_write_node_config writes the config and es_node_command
# builds the command that runs the node (as $ES_RUN_AS when we are root).
#
# Needs ROOT and STATE (services/lib.sh sets them).

ES_VERSION="${ES_VERSION:-8.14.1}"
ES_RUN_AS="${ES_RUN_AS:-dbbench}"

# Where the distribution lives: the single node's folder, whichever launcher installs it.
es_dist_dir() { printf '%s/elasticsearch' "${STATE:?STATE not set}"; }
es_home() { printf '%s/dist/elasticsearch-%s' "$(es_dist_dir)" "$ES_VERSION"; }
es_installed() { [ -f "$(es_home)/lib/elasticsearch-${ES_VERSION}.jar" ]; }

es_java_home() {
    if [ -n "${ES_JAVA_HOME:-}" ]; then printf '%s' "$ES_JAVA_HOME"; return; fi
    if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then printf '%s' "$JAVA_HOME"; return; fi
    local j; j="$(command -v java)" || return 1
    j="$(readlink -f "$j")"
    printf '%s' "${j%/bin/java}"
}

# The prefix that runs a command as the unprivileged user when we are root (Elasticsearch
# refuses to run as root), into the array ES_RUN_PREFIX; empty otherwise.
es_run_prefix() {
    ES_RUN_PREFIX=()
    if [ "$(id -u)" = 0 ]; then
        ES_RUN_PREFIX=(setpriv --reuid="$ES_RUN_AS" --regid="$ES_RUN_AS" --init-groups --)
    fi
}

es_ensure_user() {
    [ "$(id -u)" = 0 ] || return 0
    id "$ES_RUN_AS" >/dev/null 2>&1 && return 0
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$ES_RUN_AS"
}

# Install the distribution (idempotent; a no-op when it is there): Maven resolves Elastic's
# integ-test-zip from Maven Central (services/elasticsearch/pom.xml), and it is unzipped
# into $STATE/elasticsearch/dist.
es_install() {
    local d home zip
    d="$(es_dist_dir)"; home="$(es_home)"
    es_ensure_user || { echo "elasticsearch: cannot create user $ES_RUN_AS" >&2; return 1; }
    if es_installed; then return 0; fi
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
    es_installed
}

# es_write_node_config NODE_DIR CLUSTER NODE HTTP_PORT TRANSPORT_PORT REPO_DIR [YAML...]
# (Re)write NODE_DIR/config from the distribution's defaults and our settings; every
# further argument is one more line of elasticsearch.yml (discovery). Creates the node's
# data, logs and tmp folders and REPO_DIR (path.repo), owned by the node's user.
es_write_node_config() {
    local n="$1" cluster="$2" node="$3" http="$4" transport="$5" repo="$6"
    shift 6
    local home conf
    home="$(es_home)"; conf="$n/config"
    mkdir -p "$conf/jvm.options.d" "$n/data" "$n/logs" "$n/tmp" "$repo"
    [ -f "$conf/log4j2.properties" ] || cp "$home/config/log4j2.properties" "$conf/"
    # The stock jvm.options writes gc.log / heap dumps relative to the working
    # directory; point them into the node's logs dir.
    sed -e "s#file=logs/gc.log#file=$n/logs/gc.log#" \
        -e "s#HeapDumpPath=data#HeapDumpPath=$n/logs#" \
        -e "s#ErrorFile=logs/#ErrorFile=$n/logs/#" \
        "$home/config/jvm.options" >"$conf/jvm.options"
    {
        cat <<EOF
# Written by services/elasticsearch/common.sh on every start; edits are lost.
cluster.name: $cluster
node.name: $node
path.data: $n/data
path.logs: $n/logs
# Snapshot repositories (dbbench's backups: one fs repository per collection, in a
# folder of its own under this one).
path.repo: $repo
network.host: 127.0.0.1
http.port: $http
transport.port: $transport
xpack.security.enabled: false
# A benchmark box's disk may be fuller than 85/90/95 %; don't let the disk
# watermarks block shard allocation or mark indices read-only mid-run.
cluster.routing.allocation.disk.threshold_enabled: false
EOF
        local line
        for line in "$@"; do printf '%s\n' "$line"; done
    } >"$conf/elasticsearch.yml"
    if [ "$(id -u)" = 0 ]; then
        chown -R "$ES_RUN_AS:$ES_RUN_AS" "$conf" "$n/data" "$n/logs" "$n/tmp" "$repo"
    fi
}

# es_prepare_host NODE_DIR: what a node needs of the machine before it starts; fails
# with a message when the node's user cannot write its data folder.
es_prepare_host() {
    local n="$1"
    es_java_home >/dev/null || { echo "elasticsearch: no java found" >&2; return 1; }
    # Elasticsearch wants vm.max_map_count >= 262144 (mmapped Lucene files).
    # Below that it only warns (loopback = dev mode) but large indices can fail
    # to mmap. Raise it best-effort when root; ES_SET_MAX_MAP_COUNT=0 to skip.
    if [ "$(id -u)" = 0 ] && [ "${ES_SET_MAX_MAP_COUNT:-1}" = 1 ] \
        && [ "$(cat /proc/sys/vm/max_map_count 2>/dev/null || echo 0)" -lt 262144 ]; then
        sysctl -qw vm.max_map_count=262144 2>/dev/null || true
    fi
    es_run_prefix
    if [ "$(id -u)" = 0 ] && ! "${ES_RUN_PREFIX[@]}" test -w "$n/data"; then
        echo "elasticsearch: user $ES_RUN_AS cannot reach $n/data (a parent directory is not world-searchable?)" >&2
        return 1
    fi
}

# es_node_command NODE_DIR HEAP: the command that runs the node whose config
# es_write_node_config wrote, into the array ES_NODE_COMMAND. It execs all the way down
# (env, setpriv, bin/elasticsearch), so the pid of a started command is the node's
# launcher JVM; the launcher starts the server JVM as its child and stops it on SIGTERM.
es_node_command() {
    local n="$1" heap="$2" jh
    jh="$(es_java_home)" || return 1
    es_run_prefix
    ES_NODE_COMMAND=(env ES_JAVA_HOME="$jh" ES_PATH_CONF="$n/config" ES_TMPDIR="$n/tmp"
        ES_JAVA_OPTS="-Xms${heap} -Xmx${heap} ${ES_EXTRA_JAVA_OPTS:-}"
        "${ES_RUN_PREFIX[@]}" "$(es_home)/bin/elasticsearch")
}

# es_health_json URL [QUERY]: the cluster's health as JSON, empty when it does not answer.
es_health_json() {
    curl -fs -m 3 "$1/_cluster/health${2:-}" 2>/dev/null
}
