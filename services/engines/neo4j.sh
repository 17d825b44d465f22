# shellcheck shell=bash disable=SC2034 # ENGINE_* variables are read by lib.sh / up.sh
# Neo4j 5.26.30 Community for dbbench, without Docker.
#
# Sourced by services/up.sh after services/lib.sh.
# Install: Maven resolves org.neo4j.test:neo4j-harness:5.26.30 (the whole community
# server as jars) into the local Maven repository via services/neo4j/pom.xml and
# writes their classpath; services/neo4j/DbbenchNeo4j.java, a small main, is compiled
# against it. Runs on the system JDK (17+).
# Server: Neo4j in that JVM, Bolt on 127.0.0.1:7687 only, no HTTP server, no auth,
# home (data, logs, transactions) in $STATE/neo4j. Heap and page cache are set here
# explicitly, because running in-process skips the `neo4j` launcher's defaults.
# See services/neo4j/NOTES.md.

NEO4J_VERSION=5.26.30
NEO4J_HOST=127.0.0.1
NEO4J_BOLT_PORT="${NEO4J_BOLT_PORT:-7687}"
NEO4J_HEAP="${NEO4J_HEAP:-1g}"
NEO4J_PAGECACHE="${NEO4J_PAGECACHE:-1g}"
ENGINE_URL="bolt://${NEO4J_HOST}:${NEO4J_BOLT_PORT}"
ENGINE_PORTS="${NEO4J_HOST}:${NEO4J_BOLT_PORT}"
# Start to healthy takes 12-21 s on 2 cores (17 s the first time, new stores).
ENGINE_START_TIMEOUT=120
# Stop: the shared stop_pid (lib.sh). SIGTERM runs the JVM's shutdown hook, which
# shuts the databases down with a checkpoint; SIGKILL only after 60 s.
ENGINE_STOP_TIMEOUT=60

_neo4j_src() { printf '%s/services/neo4j' "$ROOT"; }
_neo4j_install() { printf '%s/install' "$ENGINE_DIR"; }

_neo4j_java() {
    if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then printf '%s' "$JAVA_HOME/bin"; return; fi
    local j; j="$(command -v java)" || return 1
    j="$(readlink -f "$j")"
    printf '%s' "${j%/java}"
}

# Installed = the classpath file names only jars that exist, it holds this
# version's kernel, and the main class is newer than its source and the classpath.
_neo4j_installed() {
    local i cp jar
    i="$(_neo4j_install)"
    [ -s "$i/classpath" ] && [ -f "$i/classes/DbbenchNeo4j.class" ] || return 1
    [ "$i/classes/DbbenchNeo4j.class" -nt "$(_neo4j_src)/DbbenchNeo4j.java" ] || return 1
    [ "$i/classes/DbbenchNeo4j.class" -nt "$i/classpath" ] || return 1
    cp="$(cat "$i/classpath")"
    case ":$cp:" in *"/neo4j-kernel-$NEO4J_VERSION.jar:"*) ;; *) return 1 ;; esac
    local IFS=:
    for jar in $cp; do [ -f "$jar" ] || return 1; done
}

engine_install() {
    _neo4j_installed && return 0
    local i bin t0=$SECONDS
    i="$(_neo4j_install)"
    have mvn || die "mvn not found (apt-get install maven)"
    bin="$(_neo4j_java)" || die "no java found (Java 17+ needed)"
    [ -x "$bin/javac" ] || die "$bin/javac missing (a JDK is needed, not only a JRE)"
    mkdir -p "$i"
    say "resolving Neo4j $NEO4J_VERSION jars with Maven (first time: ~147 MB into the local Maven repository)"
    mvn -q -B -f "$(_neo4j_src)/pom.xml" -Dneo4j.version="$NEO4J_VERSION" \
        dependency:build-classpath -Dmdep.outputFile="$i/classpath.partial" >>"$ENGINE_DIR/install.log" 2>&1 ||
        { tail -n 40 "$ENGINE_DIR/install.log" >&2; die "mvn dependency:build-classpath failed (see $ENGINE_DIR/install.log)"; }
    [ -s "$i/classpath.partial" ] || die "mvn wrote no classpath"
    mv -f "$i/classpath.partial" "$i/classpath"
    rm -rf "$i/classes"
    mkdir -p "$i/classes"
    "$bin/javac" -nowarn -cp "$(cat "$i/classpath")" -d "$i/classes" "$(_neo4j_src)/DbbenchNeo4j.java" \
        >>"$ENGINE_DIR/install.log" 2>&1 ||
        { tail -n 40 "$ENGINE_DIR/install.log" >&2; die "javac DbbenchNeo4j.java failed"; }
    _neo4j_installed || die "Neo4j $NEO4J_VERSION still not installed after mvn and javac"
    say "Neo4j $NEO4J_VERSION installed in $((SECONDS - t0))s"
}

# Every setting the server gets, rewritten on every start (edits are lost).
_neo4j_write_config() {
    mkdir -p "$ENGINE_DIR/conf"
    cat >"$ENGINE_DIR/conf/neo4j.conf" <<EOF
# Written by services/engines/neo4j.sh on every start; edits are lost.
server.bolt.enabled=true
server.bolt.listen_address=$NEO4J_HOST:$NEO4J_BOLT_PORT
server.bolt.advertised_address=$NEO4J_HOST:$NEO4J_BOLT_PORT
server.bolt.tls_level=DISABLED
server.http.enabled=false
server.https.enabled=false
server.default_listen_address=$NEO4J_HOST
# Loopback only, like the other engines: no users, no passwords.
dbms.security.auth_enabled=false
dbms.usage_report.enabled=false
# The heap is set on the java command line (-Xms/-Xmx $NEO4J_HEAP).
server.memory.pagecache.size=$NEO4J_PAGECACHE
EOF
}

engine_start() {
    if our_pid_alive; then return 0; fi   # already running
    _neo4j_installed || die "not installed (engine_install)"
    local bin i
    bin="$(_neo4j_java)" || die "no java found"
    i="$(_neo4j_install)"
    _neo4j_write_config
    # JVM flags from Neo4j 5's own neo4j.conf (server.jvm.additional) that matter
    # in-process: G1, Netty and NIO access, no JMX for log4j.
    local -a jvm=(
        "-Xms$NEO4J_HEAP" "-Xmx$NEO4J_HEAP" -XX:+UseG1GC -XX:-OmitStackTraceInFastThrow
        -XX:+DisableExplicitGC -Djdk.nio.maxCachedBufferSize=1024
        -Dio.netty.tryReflectionSetAccessible=true -Dlog4j2.disable.jmx=true
        --add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED
        --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
    )
    # shellcheck disable=SC2086 # NEO4J_EXTRA_JAVA_OPTS is a list of flags
    ( cd "$ENGINE_DIR" || exit 1
      setsid nohup "$bin/java" "${jvm[@]}" ${NEO4J_EXTRA_JAVA_OPTS:-} \
          -cp "$i/classes:$(cat "$i/classpath")" DbbenchNeo4j "$ENGINE_DIR" "$ENGINE_DIR/conf/neo4j.conf" \
          >>"$LOG_FILE" 2>&1 </dev/null &
      pid_write "$!" )
}

# A Bolt handshake: the magic 0x6060B017 and four version proposals (5.0-5.8,
# 4.4, none, none); a Bolt server that is up answers with the 4-byte version it
# chose, one of those (all zeros would mean none suits it). Anything else, e.g.
# an HTTP server's "HTTP", is not Neo4j.
engine_healthy() {
    # shellcheck disable=SC2016 # expanded by the inner bash
    timeout 5 bash -c '
        exec 3<>"/dev/tcp/$1/$2" || exit 1
        printf "\x60\x60\xb0\x17\x00\x08\x08\x05\x00\x00\x04\x04\x00\x00\x00\x00\x00\x00\x00\x00" >&3
        answer="$(head -c 4 <&3 | od -An -tx1 | tr -d " \n")"
        case "$answer" in 00000[0-8]05|00000404) exit 0 ;; *) exit 1 ;; esac
    ' _ "$NEO4J_HOST" "$NEO4J_BOLT_PORT" 2>/dev/null
}
