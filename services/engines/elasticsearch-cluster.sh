# shellcheck shell=bash disable=SC2034 # ENGINE_* variables are read by lib.sh / up.sh
# Elasticsearch 8.14.1 as a 3-node cluster on this machine, for dbbench.
#
# Sourced by services/up.sh after services/lib.sh; uses only ROOT and STATE.
# The same installed distribution as the single node (`elasticsearch`), installed by the
# same code (services/elasticsearch/common.sh) into $STATE/elasticsearch/dist; each node
# has its own config, data, logs and tmp under $STATE/elasticsearch-cluster/node-N.
# Three master-eligible data nodes, cluster "dbbench-cluster": HTTP on
# 127.0.0.1:9201/9202/9203, transport on 9301/9302/9303, discovery through the three
# transport ports, one shared path.repo (so an fs snapshot repository works on every
# node), security off, disk watermarks off, heap 512m per node.
# The pid file names services/elasticsearch/cluster-supervisor.sh, the nodes' parent.
# It runs beside the single node (other ports, other folders).
# See services/elasticsearch/NOTES.md.

# shellcheck source=../elasticsearch/common.sh
. "$ROOT/services/elasticsearch/common.sh"

ES_CLUSTER_SIZE="${ES_CLUSTER_SIZE:-3}"
ES_CLUSTER_HTTP_PORT="${ES_CLUSTER_HTTP_PORT:-9201}"            # node 1; node N: +N-1
ES_CLUSTER_TRANSPORT_PORT="${ES_CLUSTER_TRANSPORT_PORT:-9301}"  # node 1; node N: +N-1
ES_CLUSTER_HEAP="${ES_CLUSTER_HEAP:-512m}"
ES_CLUSTER_NAME=dbbench-cluster
ENGINE_URL="http://127.0.0.1:${ES_CLUSTER_HTTP_PORT}"
ENGINE_PORTS=""
for ((_i = 0; _i < ES_CLUSTER_SIZE; _i++)); do
    ENGINE_PORTS+="127.0.0.1:$((ES_CLUSTER_HTTP_PORT + _i)) 127.0.0.1:$((ES_CLUSTER_TRANSPORT_PORT + _i)) "
done
unset _i
# Three nodes start together on 2 cores: 40-60 s (see NOTES.md). Be generous.
ENGINE_START_TIMEOUT="${ENGINE_START_TIMEOUT:-240}"
# Stop: the shared stop_pid (lib.sh). SIGTERM to the supervisor, which passes it to
# every node and waits for them; SIGKILL, after 60 s, goes to the whole process group
# (the supervisor leads it, every node is in it).
ENGINE_STOP_TIMEOUT=60
ENGINE_STOP_GROUP=1

_esc_dir() { printf '%s/elasticsearch-cluster' "${STATE:?STATE not set}"; }

engine_install() { es_install; }

engine_start() {
    local d i seeds="" masters="" nodes=()
    d="$(_esc_dir)"
    if our_pid_alive; then return 0; fi   # already running
    es_installed || { echo "elasticsearch-cluster: elasticsearch is not installed" >&2; return 1; }
    for ((i = 1; i <= ES_CLUSTER_SIZE; i++)); do
        seeds+="${seeds:+, }\"127.0.0.1:$((ES_CLUSTER_TRANSPORT_PORT + i - 1))\""
        masters+="${masters:+, }dbbench-es-$i"
    done
    # The first start bootstraps the cluster: cluster.initial_master_nodes names every
    # master-eligible node. Once all of them have joined (engine_healthy leaves a mark),
    # each keeps the cluster's UUID in its data folder, and Elasticsearch asks for the
    # setting to go ("remove this setting to avoid possible data loss caused by
    # subsequent cluster bootstrap attempts"), so later starts leave it out.
    local bootstrap=("cluster.initial_master_nodes: [$masters]")
    [ ! -e "$d/cluster-formed" ] || bootstrap=()
    for ((i = 1; i <= ES_CLUSTER_SIZE; i++)); do
        nodes+=("$d/node-$i")
        es_write_node_config "$d/node-$i" "$ES_CLUSTER_NAME" "dbbench-es-$i" \
            "$((ES_CLUSTER_HTTP_PORT + i - 1))" "$((ES_CLUSTER_TRANSPORT_PORT + i - 1))" "$d/snapshots" \
            "discovery.seed_hosts: [$seeds]" "${bootstrap[@]}" || return 1
        es_prepare_host "$d/node-$i" || return 1
    done
    # setsid without a fork keeps $! == the supervisor (bash execs the script), which
    # leads the process group every node is in.
    ( cd "$d" || exit 1
      setsid nohup bash "$ROOT/services/elasticsearch/cluster-supervisor.sh" "$ES_CLUSTER_HEAP" "${nodes[@]}" \
          >>"$d/log" 2>&1 </dev/null &
      pid_write "$!" )
}

# Healthy: the cluster reports all its nodes, and status green or yellow. The first time
# that holds for a cluster this file started, every node has joined it: the bootstrap
# setting is then left out of later starts (engine_start).
engine_healthy() {
    local h
    h="$(es_health_json "$ENGINE_URL" "?wait_for_status=yellow&timeout=1s")" || return 1
    grep -qE '"status":"(yellow|green)"' <<<"$h" && grep -q "\"number_of_nodes\":${ES_CLUSTER_SIZE}," <<<"$h" \
        && grep -q "\"cluster_name\":\"${ES_CLUSTER_NAME}\"" <<<"$h" || return 1
    if [ ! -e "$(_esc_dir)/cluster-formed" ] && our_pid_alive; then
        : >"$(_esc_dir)/cluster-formed" 2>/dev/null || true
    fi
}
