# shellcheck shell=bash disable=SC2034 # ENGINE_* variables are read by lib.sh / up.sh
# Elasticsearch 8.14.1 for dbbench, without Docker: one node.
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
# The install, the node's config and its command are shared with the 3-node
# elasticsearch-cluster: services/elasticsearch/common.sh.

# shellcheck source=../elasticsearch/common.sh
. "$ROOT/services/elasticsearch/common.sh"

ES_HTTP_PORT="${ES_HTTP_PORT:-9200}"
ES_TRANSPORT_PORT="${ES_TRANSPORT_PORT:-9300}"
ES_HEAP="${ES_HEAP:-1g}"
ENGINE_URL="http://127.0.0.1:${ES_HTTP_PORT}"
# First start takes ~11 s on 2 cores; later ones are similar. Be generous.
ENGINE_START_TIMEOUT="${ENGINE_START_TIMEOUT:-180}"
# Stop: the shared stop_pid (lib.sh). SIGTERM to the launcher JVM stops the server
# JVM cleanly in ~2 s; SIGKILL, after 60 s, goes to the whole process group.
ENGINE_STOP_TIMEOUT=60
ENGINE_STOP_GROUP=1

engine_install() { es_install; }

engine_start() {
    local d; d="$(es_dist_dir)"
    if our_pid_alive; then return 0; fi   # already running
    es_installed || { echo "elasticsearch: not installed" >&2; return 1; }
    es_write_node_config "$d" dbbench dbbench-es "$ES_HTTP_PORT" "$ES_TRANSPORT_PORT" "$d/snapshots" \
        "discovery.type: single-node" || return 1
    es_prepare_host "$d" || return 1
    es_node_command "$d" "$ES_HEAP" || { echo "elasticsearch: no java found" >&2; return 1; }
    # setsid without a fork keeps $! == the launcher JVM (the command execs all the way
    # down), which is also the process-group leader.
    ( cd "$d" || exit 1
      setsid nohup "${ES_NODE_COMMAND[@]}" >>"$d/log" 2>&1 </dev/null &
      pid_write "$!" )
}

engine_healthy() {
    es_health_json "$ENGINE_URL" "?wait_for_status=yellow&timeout=1s" | grep -qE '"status":"(yellow|green)"'
}
