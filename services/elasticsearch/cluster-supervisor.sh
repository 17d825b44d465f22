#!/usr/bin/env bash
# The one process of the 3-node Elasticsearch (services/engines/elasticsearch-cluster.sh)
# that its pid file names: every node runs as its child, so the cluster is this process
# and its descendants. Resource sampling sees all of it, a recovery phase's SIGKILL of
# the tree takes every node, and down.sh stops every node by stopping this one.
#
# Usage: cluster-supervisor.sh HEAP NODE_DIR...
#   each NODE_DIR configured by es_write_node_config; ROOT and STATE in the environment
#   (services/lib.sh exports them). Its output, and every node's console, go where its
#   own standard output goes (the engine's log); each line of a node names the node.
#
# It starts every node (bin/elasticsearch: the launcher JVM, which starts the server JVM
# as its child), then waits. On SIGTERM or SIGINT it sends SIGTERM to every node still
# running and waits for them all (a node shuts down cleanly in about 2 s). A node that
# exits on its own leaves a cluster that is not what was asked for: the supervisor then
# stops the others and exits non-zero, so up.sh sees a failed start at once, and
# status.sh shows the cluster down rather than two nodes passing for three.
set -uo pipefail
# shellcheck source=common.sh
. "$ROOT/services/elasticsearch/common.sh"

heap="$1"
shift
pids=()
declare -A name_of=()

log() { printf '[%(%Y-%m-%dT%H:%M:%S)T][cluster-supervisor] %s\n' -1 "$*"; }

stop_nodes() {
    local p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
}

stopping=0
trap 'stopping=1; log "stop asked: SIGTERM to every node (pids ${pids[*]})"; stop_nodes' TERM INT

for n in "$@"; do
    if ! es_node_command "$n" "$heap"; then
        log "no java found; stopping"
        stopping=1
        stop_nodes
        break
    fi
    # exec: the child's pid is the node's launcher JVM's.
    ( cd "$n" && exec "${ES_NODE_COMMAND[@]}" ) </dev/null &
    pids+=("$!")
    name_of[$!]="$(basename "$n")"
    log "started $(basename "$n") (pid $!, heap $heap)"
done

rc=0
while [ "${#pids[@]}" -gt 0 ]; do
    unset done_pid
    wait -n -p done_pid "${pids[@]}"
    r=$?
    # A trapped signal interrupts wait without a child having exited.
    [ -n "${done_pid:-}" ] || continue
    remaining=()
    for p in "${pids[@]}"; do [ "$p" = "$done_pid" ] || remaining+=("$p"); done
    pids=("${remaining[@]+"${remaining[@]}"}")
    if [ "$stopping" = 1 ]; then
        log "${name_of[$done_pid]} stopped (exit status $r)"
        continue
    fi
    log "${name_of[$done_pid]} (pid $done_pid) exited on its own with status $r; stopping the other nodes"
    rc=1
    stopping=1
    stop_nodes
done
log "every node has exited"
exit "$rc"
