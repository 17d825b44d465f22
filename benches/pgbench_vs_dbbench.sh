#!/usr/bin/env bash
# Side by side: pgbench and dbbench reading one row by primary key from the same table,
# with the same number of clients and the same duration, against the same server.
# Keeps the harness honest: dbbench's throughput should be at least 0.9 of pgbench's.
#
# usage: benches/pgbench_vs_dbbench.sh [CLIENTS] [SECONDS]      (defaults: 4 15)
# env:   DBBENCH_PG_URL  (default postgres://dbbench:dbbench@127.0.0.1:5433/dbbench)
#        DBBENCH_BIN     (default target/release/dbbench), PGBENCH, PSQL
#
# dbbench runs first (benches/pg-get.toml: it loads the table and keeps it), then pgbench
# (-M prepared, -n, a script selecting the same columns by the same uniform random id),
# then the table is dropped, but only if its comment marks it as dbbench's.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLIENTS="${1:-4}"
SECONDS_EACH="${2:-15}"
URL="${DBBENCH_PG_URL:-postgres://dbbench:dbbench@127.0.0.1:5433/dbbench}"
DBBENCH="${DBBENCH_BIN:-$ROOT/target/release/dbbench}"
PG_BIN="/usr/lib/postgresql/${DBBENCH_PG_MAJOR:-15}/bin"
PGBENCH="${PGBENCH:-$(command -v pgbench || echo "$PG_BIN/pgbench")}"
PSQL="${PSQL:-$(command -v psql || echo "$PG_BIN/psql")}"
TABLE="dbbench.dbbench_pg_get"
DOCS=20000   # [dataset.synthetic] docs in benches/pg-get.toml: ids 0 .. DOCS-1

[ -x "$DBBENCH" ] || { echo "no $DBBENCH: run 'cargo build --release' first" >&2; exit 2; }
[ -x "$PGBENCH" ] || { echo "pgbench not found (apt-get install postgresql-client-15, or set PGBENCH)" >&2; exit 2; }

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
echo "== dbbench: get, $CLIENTS clients, ${SECONDS_EACH}s (after a 3s warmup)"
DBBENCH_PG_URL="$URL" "$DBBENCH" run "$TMP/pg-get.toml" --engines pgvector --out "$TMP/out" \
  --duration "${SECONDS_EACH}s" --no-progress --cache "$TMP/cache"
DB_TPS="$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["engines"][0]["phases"][0]["ops"][0]["throughput_ops_s"])' "$TMP/out/results.json")"

cat >"$TMP/get.sql" <<SQL
\set id random(0, $((DOCS - 1)))
SELECT id, embedding, text, a_year FROM $TABLE WHERE id = :id;
SQL
echo "== pgbench: same query, -M prepared, $CLIENTS clients, $THREADS threads, ${SECONDS_EACH}s"
"$PGBENCH" -n -M prepared -c "$CLIENTS" -j "$THREADS" -T "$SECONDS_EACH" -f "$TMP/get.sql" "$URL" | tee "$TMP/pgbench.txt"
PG_TPS="$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' "$TMP/pgbench.txt")"

python3 - "$DB_TPS" "$PG_TPS" <<'PY'
import sys
db, pg = float(sys.argv[1]), float(sys.argv[2])
print(f"\ndbbench get: {db:10.0f} ops/s")
print(f"pgbench    : {pg:10.0f} tps")
print(f"ratio dbbench/pgbench = {db / pg:.3f} (goal >= 0.9)")
PY
