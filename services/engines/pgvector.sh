# shellcheck shell=bash disable=SC2034 # ENGINE_* variables are read by up.sh / status.sh
# pgvector engine: a private PostgreSQL cluster with the pgvector extension.
#
# Install: pgvector 0.8.0 built from Debian trixie's source package against the
#          machine's PostgreSQL (default 15) with postgresql-server-dev-NN.
# Server:  data in $STATE/pgvector/data, TCP on 127.0.0.1:${DBBENCH_PG_PORT:-5433}
#          only (scram-sha-256), unix socket in $STATE/pgvector/run (mode 0700,
#          trust, used only for bootstrapping as the superuser `postgres`).
#
# Sourced (in a subshell) by services/up.sh, down.sh and status.sh after lib.sh.

PG_MAJOR="${DBBENCH_PG_MAJOR:-15}"
PG_BIN="/usr/lib/postgresql/$PG_MAJOR/bin"
PG_PKGLIBDIR="/usr/lib/postgresql/$PG_MAJOR/lib"
PG_EXTDIR="/usr/share/postgresql/$PG_MAJOR/extension"
PG_PORT="${DBBENCH_PG_PORT:-5433}"
PG_HOST=127.0.0.1
PG_DATA="$ENGINE_DIR/data"
PG_RUN="$ENGINE_DIR/run"
PGVECTOR_VERSION=0.8.0
PGVECTOR_SUITE="${DBBENCH_PGVECTOR_SUITE:-trixie}"
PGVECTOR_SRC_LIST=/etc/apt/sources.list.d/dbbench-trixie-src.sources

ENGINE_URL="postgres://dbbench:dbbench@$PG_HOST:$PG_PORT/dbbench"
ENGINE_PORTS="$PG_HOST:$PG_PORT"
ENGINE_START_TIMEOUT="${DBBENCH_PG_START_TIMEOUT:-120}"

# PostgreSQL refuses to run as root: as root we run the server as the
# `postgres` system user created by Debian's postgresql-common.
if [ "$(id -u)" -eq 0 ]; then PG_OS_USER=postgres; else PG_OS_USER="$(id -un)"; fi

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "$PG_OS_USER" -- "$@"
  else
    "$@"
  fi
}

pgvector_installed() {
  [ -f "$PG_PKGLIBDIR/vector.so" ] &&
    [ -f "$PG_EXTDIR/vector--$PGVECTOR_VERSION.sql" ] &&
    grep -Eq "^default_version *= *'$PGVECTOR_VERSION'" "$PG_EXTDIR/vector.control" 2>/dev/null
}

pgv_pkg_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'
}

# Run a command with its output going to install.log; on failure show the tail.
pgv_logged() {
  local what="$1"; shift
  local ilog="$ENGINE_DIR/install.log"
  say "$what"
  printf '\n=== %s: %s\n$ %s\n' "$(date -u +%FT%TZ)" "$what" "$*" >>"$ilog"
  if ! "$@" >>"$ilog" 2>&1; then
    printf -- '----- last 40 lines of %s -----\n' "$ilog" >&2
    tail -n 40 "$ilog" >&2
    die "failed: $what"
  fi
}

# Add a deb-src-only entry for trixie next to the machine's Debian sources.
# deb-src entries never provide binary packages, so apt cannot upgrade
# anything from trixie because of it.
pgv_ensure_src_list() {
  local uri="http://deb.debian.org/debian" keyring=/usr/share/keyrings/debian-archive-keyring.gpg u
  local f=/etc/apt/sources.list.d/debian.sources
  if [ -r "$f" ]; then
    # reuse the mirror the machine already uses for Debian itself
    u="$(awk '/^URIs:/{for(i=2;i<=NF;i++) if ($i ~ /\/debian\/?$/) {print $i; exit}}' "$f")"
    [ -z "$u" ] || uri="$u"
  fi
  [ -r "$keyring" ] || die "$keyring missing (apt-get install debian-archive-keyring)"
  local want
  want="# Added by dbbench services/engines/pgvector.sh: source packages only, used
# to build pgvector $PGVECTOR_VERSION from Debian $PGVECTOR_SUITE. Safe to delete.
Types: deb-src
URIs: $uri
Suites: $PGVECTOR_SUITE
Components: main
Signed-By: $keyring"
  if [ "$(cat "$PGVECTOR_SRC_LIST" 2>/dev/null)" != "$want" ]; then
    say "writing $PGVECTOR_SRC_LIST (deb-src $PGVECTOR_SUITE)"
    printf '%s\n' "$want" | as_root tee "$PGVECTOR_SRC_LIST" >/dev/null
  fi
}

engine_install() {
  if pgvector_installed && [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ]; then
    return 0
  fi
  have apt-get || die "pgvector install needs apt-get (Debian); install pgvector $PGVECTOR_VERSION for PostgreSQL $PG_MAJOR by hand"
  local t0=$SECONDS
  say "installing pgvector $PGVECTOR_VERSION for PostgreSQL $PG_MAJOR (details: $ENGINE_DIR/install.log)"
  export DEBIAN_FRONTEND=noninteractive
  local apt=(apt-get -o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0)
  pgv_ensure_src_list
  pgv_logged "apt-get update" as_root "${apt[@]}" update
  if grep -Eq "(NO_PUBKEY|not signed|EXPKEYSIG|Failed to fetch).*$PGVECTOR_SUITE|$PGVECTOR_SUITE.*(NO_PUBKEY|not signed|EXPKEYSIG)" "$ENGINE_DIR/install.log"; then
    tail -n 20 "$ENGINE_DIR/install.log" >&2
    die "apt could not verify the $PGVECTOR_SUITE source index; see $ENGINE_DIR/install.log"
  fi
  # Install only what is missing (naming an installed package would upgrade it).
  # Pin the -dev package to the installed server's version when apt still has
  # it, so that this step never upgrades the PostgreSQL server as a side effect.
  local pkgs=() p srv_ver
  for p in "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR" build-essential dpkg-dev; do
    pgv_pkg_installed "$p" || pkgs+=("$p")
  done
  srv_ver="$(dpkg-query -W -f='${Version}' "postgresql-$PG_MAJOR" 2>/dev/null || true)"
  if [ -n "$srv_ver" ] && apt-cache madison "postgresql-server-dev-$PG_MAJOR" | awk -F' *[|] *' '{print $2}' | grep -qxF "$srv_ver"; then
    for p in "${!pkgs[@]}"; do
      [ "${pkgs[$p]}" != "postgresql-server-dev-$PG_MAJOR" ] || pkgs[p]="postgresql-server-dev-$PG_MAJOR=$srv_ver"
    done
  fi
  if [ "${#pkgs[@]}" -gt 0 ]; then
    pgv_logged "apt-get install ${pkgs[*]}" as_root "${apt[@]}" install -y --no-install-recommends "${pkgs[@]}"
  fi

  local build="$ENGINE_DIR/build"
  rm -rf "$build"
  mkdir -p "$build"
  # shellcheck disable=SC2016 # expanded by the inner bash
  pgv_logged "apt-get source pgvector/$PGVECTOR_SUITE" \
    bash -c 'cd "$1" && apt-get source --only-source "pgvector/$2"' _ "$build" "$PGVECTOR_SUITE"
  local src
  src="$(find "$build" -mindepth 1 -maxdepth 1 -type d -name "pgvector-$PGVECTOR_VERSION*" | head -n 1)"
  [ -n "$src" ] || die "apt-get source did not produce pgvector-$PGVECTOR_VERSION in $build (see $ENGINE_DIR/install.log)"
  grep -Eq "^default_version *= *'$PGVECTOR_VERSION'" "$src/vector.control" ||
    die "$src is not pgvector $PGVECTOR_VERSION"
  # OPTFLAGS="" as Debian's own package does: no -march=native, so the build
  # is portable and comparable with the pgvector Docker image.
  local mk=(make -C "$src" PG_CONFIG="$PG_BIN/pg_config" OPTFLAGS="${DBBENCH_PGVECTOR_OPTFLAGS:-}")
  pgv_logged "make (pgvector $PGVECTOR_VERSION)" "${mk[@]}" -j"$(nproc 2>/dev/null || echo 2)"
  pgv_logged "make install" as_root "${mk[@]}" install
  pgvector_installed || die "pgvector $PGVECTOR_VERSION still not found in $PG_PKGLIBDIR / $PG_EXTDIR after make install"
  say "pgvector $PGVECTOR_VERSION installed in $((SECONDS - t0))s"
}

pgv_write_config() {
  local conf="$PG_DATA/dbbench.conf"
  cat >"$conf" <<CONF
# Managed by services/engines/pgvector.sh; rewritten on every start.
listen_addresses = '$PG_HOST'
port = $PG_PORT
unix_socket_directories = '$PG_RUN'
unix_socket_permissions = 0700
max_connections = 200
shared_buffers = 1GB
maintenance_work_mem = 1GB
effective_cache_size = 12GB
work_mem = 16MB
max_parallel_maintenance_workers = 1
max_wal_size = 4GB
fsync = on
synchronous_commit = on
timezone = 'UTC'
log_timezone = 'UTC'
CONF
  cat >"$PG_DATA/pg_hba.conf" <<HBA
# Managed by services/engines/pgvector.sh; rewritten on every start.
# TYPE  DATABASE  USER  ADDRESS        METHOD
local   all       all                  trust
host    all       all   127.0.0.1/32   scram-sha-256
host    all       all   ::1/128        scram-sha-256
HBA
  grep -q "^include_if_exists = 'dbbench.conf'" "$PG_DATA/postgresql.conf" ||
    printf "\n# dbbench settings\ninclude_if_exists = 'dbbench.conf'\n" >>"$PG_DATA/postgresql.conf"
  if [ "$(id -u)" -eq 0 ]; then
    chown "$PG_OS_USER:" "$conf" "$PG_DATA/pg_hba.conf" "$PG_DATA/postgresql.conf"
  fi
  chmod 600 "$conf" "$PG_DATA/pg_hba.conf"
}

pgv_psql_super() {
  PGOPTIONS="-c client_min_messages=warning" as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_RUN" -p "$PG_PORT" -U postgres "$@"
}

engine_start() {
  [ -x "$PG_BIN/pg_ctl" ] || die "$PG_BIN/pg_ctl missing; run engine_install"
  id "$PG_OS_USER" >/dev/null 2>&1 || die "system user $PG_OS_USER missing (is postgresql-$PG_MAJOR installed?)"
  [ "${#PG_RUN}" -lt 90 ] || die "socket dir path too long for a unix socket: $PG_RUN (set DBBENCH_SERVICES_DIR to a shorter path)"
  mkdir -p "$ENGINE_DIR" "$PG_RUN" "$PG_DATA"
  # The server user must be able to reach the state dir (which we own).
  chmod a+x "$STATE" "$ENGINE_DIR"
  touch "$LOG_FILE"
  if [ "$(id -u)" -eq 0 ]; then
    chown "$PG_OS_USER:" "$PG_RUN" "$PG_DATA" "$LOG_FILE"
  fi
  chmod 700 "$PG_RUN" "$PG_DATA"
  if ! as_pg test -w "$PG_DATA" -a -w "$LOG_FILE"; then
    die "user $PG_OS_USER cannot reach $PG_DATA: a parent directory is not searchable by it (needs o+x). Set DBBENCH_SERVICES_DIR to a directory it can reach, e.g. /var/tmp/dbbench-services"
  fi
  cd "$ENGINE_DIR" || die "cannot cd $ENGINE_DIR"  # postgres tools complain about an unreadable cwd

  if [ ! -s "$PG_DATA/PG_VERSION" ]; then
    if [ -n "$(ls -A "$PG_DATA")" ]; then
      say "$PG_DATA has no PG_VERSION (half-done initdb?); wiping it"
      find "$PG_DATA" -mindepth 1 -delete
    fi
    say "initdb $PG_DATA"
    as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -E UTF8 --locale=C.UTF-8 \
      --auth-local=trust --auth-host=scram-sha-256 >>"$LOG_FILE" 2>&1 ||
      die "initdb failed (see $LOG_FILE)"
  fi
  local have_ver
  have_ver="$(cat "$PG_DATA/PG_VERSION")"
  [ "$have_ver" = "$PG_MAJOR" ] ||
    die "$PG_DATA was made by PostgreSQL $have_ver, not $PG_MAJOR; move it away or set DBBENCH_PG_MAJOR"
  pgv_write_config

  # setsid: the postmaster gets its own session, so it outlives the calling shell.
  local run_as=()
  [ "$(id -u)" -ne 0 ] || run_as=(runuser -u "$PG_OS_USER" --)
  # shellcheck disable=SC2094 # pg_ctl appends to the log; we do not read it here
  setsid -w "${run_as[@]}" "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$LOG_FILE" -w -t "$ENGINE_START_TIMEOUT" start </dev/null >>"$LOG_FILE" 2>&1 ||
    die "pg_ctl start failed"
  local pid
  pid="$(head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null | tr -dc '0-9')"
  [ -n "$pid" ] || die "no pid in $PG_DATA/postmaster.pid"
  pid_write "$pid"

  # Role, database and extension (idempotent).
  pgv_psql_super -d postgres <<'SQL'
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dbbench') THEN
    CREATE ROLE dbbench LOGIN PASSWORD 'dbbench';
  END IF;
END
$$;
ALTER ROLE dbbench LOGIN PASSWORD 'dbbench';
SELECT 'CREATE DATABASE dbbench OWNER dbbench'
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'dbbench')\gexec
SQL
  pgv_psql_super -d dbbench <<'SQL'
CREATE EXTENSION IF NOT EXISTS vector;
ALTER EXTENSION vector UPDATE;
SQL
}

# Optional hook: the postmaster of OUR data dir, if it is running (lets
# up/down/status recover a lost pid file instead of calling our server foreign).
engine_own_pid() {
  local pid
  pid="$(head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null | tr -dc '0-9')"
  [ -n "$pid" ] && pid_alive "$pid" && pid_in_dir "$pid" "$PG_DATA" || return 1
  printf '%s\n' "$pid"
}

engine_healthy() {
  "$PG_BIN/pg_isready" -q -h "$PG_HOST" -p "$PG_PORT" -t 3 >/dev/null 2>&1 || return 1
  local v
  v="$(PGPASSWORD=dbbench PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -X -qtA -h "$PG_HOST" -p "$PG_PORT" -U dbbench -d dbbench \
    -c "select extversion from pg_extension where extname = 'vector'" 2>/dev/null)" || return 1
  [ -n "$v" ]
}

# pg_ctl's own fast shutdown; down.sh falls back to the shared stop_pid if the
# postmaster is still there after ENGINE_STOP_TIMEOUT.
engine_stop() {
  [ -s "$PG_DATA/PG_VERSION" ] || return 0
  cd "$ENGINE_DIR" || return 1
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" stop -m fast -w -t 60 >>"$LOG_FILE" 2>&1
}
