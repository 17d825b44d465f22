#!/usr/bin/env bash
# Side by side: pgbench and dbbench reading one row by primary key from the same table,
# with the same number of clients and the same duration, against the same server.
# Keeps the harness honest: dbbench's throughput should be at least 0.9 of pgbench's.
#
# usage: benches/pgbench_vs_dbbench.sh [CLIENTS] [SECONDS] [ROUNDS]   (defaults: 4 5 10)
# build: cargo build --release --bin dbbench --example sqlx_get
# env:   DBBENCH_PG_URL  (default postgres://dbbench:dbbench@127.0.0.1:5433/dbbench)
#        DBBENCH_BIN     (default target/release/dbbench), SQLX_GET_BIN, PGBENCH, PSQL
#
# A round runs three clients one after the other, SECONDS each:
#   dbbench  benches/pg-get.toml: loads the table (and keeps it), warms up 3s, measures `get`;
#   sqlx     examples/sqlx_get.rs: the same query through the same client library and
#            runtime with no harness around it, so dbbench/sqlx is what the harness costs
#            and sqlx/pgbench what the client library costs against libpq;
#   pgbench  -n -M prepared, a script selecting the same columns by the same uniform id.
# Each round starts one place further along (dbbench, sqlx, pgbench | sqlx, pgbench,
# dbbench | ...), so a drift in the machine's speed falls on all alike, and the figures to
# judge are medians of per-round ratios: on a shared machine one pair of runs can be 15%
# off either way. At the end the table is dropped, only if its comment marks it dbbench's.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLIENTS="${1:-4}"
SECONDS_EACH="${2:-5}"
ROUNDS="${3:-10}"
URL="${DBBENCH_PG_URL:-postgres://dbbench:dbbench@127.0.0.1:5433/dbbench}"
DBBENCH="${DBBENCH_BIN:-$ROOT/target/release/dbbench}"
SQLX_GET="${SQLX_GET_BIN:-$ROOT/target/release/examples/sqlx_get}"
PG_BIN="/usr/lib/postgresql/${DBBENCH_PG_MAJOR:-15}/bin"
PGBENCH="${PGBENCH:-$(command -v pgbench || echo "$PG_BIN/pgbench")}"
PSQL="${PSQL:-$(command -v psql || echo "$PG_BIN/psql")}"
TABLE="dbbench.dbbench_pg_get"
DOCS=20000   # [dataset.synthetic] docs in benches/pg-get.toml: ids 0 .. DOCS-1

[ -x "$DBBENCH" ] || { echo "no $DBBENCH: run 'cargo build --release --bin dbbench' first" >&2; exit 2; }
[ -x "$SQLX_GET" ] || { echo "no $SQLX_GET: run 'cargo build --release --example sqlx_get' first" >&2; exit 2; }
[ -x "$PGBENCH" ] || { echo "pgbench not found (apt-get install postgresql-client-15, or set PGBENCH)" >&2; exit 2; }
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS must be a positive integer, not '$ROUNDS'" >&2; exit 2; }

TMP="$(mktemp -d)"
cleanup() {
  "$PSQL" -X -q "$URL" -v ON_ERROR_STOP=1 >/dev/null <<SQL || echo "warning: could not drop $TABLE" >&2
DO \$\$
BEGIN
  IF obj_description(to_regclass('$TABLE'), 'pg_class') LIKE 'dbbench:%' THEN
    EXECUTE 'DROP TABLE $TABLE';
  END IF;
END
\$\$;
SQL
  rm -rf "$TMP"
}
trap cleanup EXIT

THREADS="$(nproc 2>/dev/null || echo 2)"
[ "$THREADS" -le "$CLIENTS" ] || THREADS="$CLIENTS"

sed "s/^concurrency = .*/concurrency = $CLIENTS/" "$ROOT/benches/pg-get.toml" >"$TMP/pg-get.toml"
cat >"$TMP/get.sql" <<SQL
\set id random(0, $((DOCS - 1)))
SELECT id, embedding, text, a_year FROM $TABLE WHERE id = :id;
SQL

run_dbbench() {
  DBBENCH_PG_URL="$URL" "$DBBENCH" run "$TMP/pg-get.toml" --engines pgvector --out "$TMP/out" \
    --duration "${SECONDS_EACH}s" --no-progress --cache "$TMP/cache" >"$TMP/dbbench.log" 2>&1 \
    || { cat "$TMP/dbbench.log" >&2; exit 1; }
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["engines"][0]["phases"][0]["ops"][0]["throughput_ops_s"])' \
    "$TMP/out/results.json"
  rm -rf "$TMP/out"
}

run_sqlx() {
  "$SQLX_GET" "$URL" "$TABLE" "$DOCS" "$CLIENTS" "$SECONDS_EACH" >"$TMP/sqlx.txt" 2>&1 \
    || { cat "$TMP/sqlx.txt" >&2; exit 1; }
  cut -d' ' -f2 "$TMP/sqlx.txt"
}

run_pgbench() {
  "$PGBENCH" -n -M prepared -c "$CLIENTS" -j "$THREADS" -T "$SECONDS_EACH" -f "$TMP/get.sql" "$URL" >"$TMP/pgbench.txt" 2>&1 \
    || { cat "$TMP/pgbench.txt" >&2; exit 1; }
  sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' "$TMP/pgbench.txt"
}

echo "get by primary key, $CLIENTS clients, ${SECONDS_EACH}s each, $ROUNDS rounds"
echo "  dbbench: $(basename "$DBBENCH") run benches/pg-get.toml (3s warmup first)"
echo "  sqlx   : $(basename "$SQLX_GET") (no harness)"
echo "  pgbench: -n -M prepared -c $CLIENTS -j $THREADS"
: >"$TMP/rounds"
for ((round = 1; round <= ROUNDS; round++)); do
  # Round 1 starts with dbbench: its run creates the table the other two read.
  for ((i = 0; i < 3; i++)); do
    case $(((round - 1 + i) % 3)) in
      0) db="$(run_dbbench)" ;;
      1) sx="$(run_sqlx)" ;;
      2) pg="$(run_pgbench)" ;;
    esac
  done
  echo "$db $sx $pg" >>"$TMP/rounds"
  python3 -c 'import sys; db, sx, pg = map(float, sys.argv[2:]); print(f"round {sys.argv[1]}: dbbench {db:6.0f}  sqlx {sx:6.0f}  pgbench {pg:6.0f} requests/s   dbbench/pgbench {db / pg:.3f}  dbbench/sqlx {db / sx:.3f}")' \
    "$round" "$db" "$sx" "$pg"
done

python3 - "$TMP/rounds" <<'PY'
import statistics, sys
rounds = [tuple(map(float, line.split())) for line in open(sys.argv[1])]
def show(name, ratios, goal=None):
    r = sorted(ratios)
    verdict = f"; goal >= {goal}: {'met' if statistics.median(r) >= goal else 'NOT met'}" if goal else ""
    print(f"{name:16}: median {statistics.median(r):.3f} (lowest {r[0]:.3f}, highest {r[-1]:.3f}){verdict}")
print(f"\nmedians over {len(rounds)} rounds: dbbench {statistics.median(r[0] for r in rounds):.0f}, "
      f"sqlx {statistics.median(r[1] for r in rounds):.0f}, pgbench {statistics.median(r[2] for r in rounds):.0f} requests/s")
show("dbbench/pgbench", [db / pg for db, _, pg in rounds], 0.9)
show("dbbench/sqlx", [db / sx for db, sx, _ in rounds])
show("sqlx/pgbench", [sx / pg for _, sx, pg in rounds])
PY
