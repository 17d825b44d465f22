#!/usr/bin/env bash
# Client overhead check for the chroma driver: dbbench's closed-loop kNN phase against
# Chroma, then wrk posting the same kind of query body to the same endpoint at the same
# concurrency. Prints both throughputs and dbbench/wrk (goal: >= 0.9).
#
# Usage: benches/chroma_wrk.sh [CONCURRENCY=4] [SECONDS=15]
# Env:   DBBENCH_CHROMA_URL (default http://127.0.0.1:8000)
#        DBBENCH_SCIFACT    (default ../shared/datasets/scifact next to the repository)
# Needs: a running Chroma (services/up.sh chroma), python3, curl; installs wrk with
#        apt-get when it is missing.
set -euo pipefail

C="${1:-4}"
D="${2:-15}"
URL="${DBBENCH_CHROMA_URL:-http://127.0.0.1:8000}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DATA="${DBBENCH_SCIFACT:-$ROOT/../shared/datasets/scifact}"
NAME="chroma_wrk"
COLLECTION="dbbench_${NAME}"
API="$URL/api/v2/tenants/dbbench/databases/dbbench"
THREADS=$(( C < 2 ? C : 2 ))

command -v curl >/dev/null || { echo "needs curl" >&2; exit 2; }
command -v python3 >/dev/null || { echo "needs python3" >&2; exit 2; }
if ! command -v wrk >/dev/null; then
    echo "installing wrk (Debian package)" >&2
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get install -y wrk >/dev/null 2>&1 || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y wrk >/dev/null; }
fi
[ -f "$DATA/queries.minilm.npy" ] || { echo "SciFact not found at $DATA (set DBBENCH_SCIFACT)" >&2; exit 2; }
curl -fsS "$URL/api/v2/heartbeat" >/dev/null || { echo "Chroma is not answering at $URL: services/up.sh chroma" >&2; exit 1; }

BIN="$ROOT/target/release/dbbench"
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release)

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# Keep the collection after the run (load.cleanup = false) so wrk can hit the same one.
cat >"$WORK/$NAME.toml" <<TOML
[workload]
name = "$NAME"

[dataset]
source = "beir"
path = "$DATA"
corpus_vectors = "corpus.minilm.npy"
query_vectors = "queries.minilm.npy"
qrels = "qrels/test.tsv"
metric = "cosine"

[engines.chroma]
url = "$URL"

[load]
cleanup = false

[[phases]]
name = "knn"
duration = "${D}s"
warmup = "3s"
concurrency = $C
[[phases.ops]]
op = "knn"
k = 10
TOML

echo "== dbbench: knn k=10, concurrency $C, ${D}s (SciFact, 5,183 x 384, cosine)"
"$BIN" run "$WORK/$NAME.toml" --engines chroma --out "$WORK/out" >"$WORK/dbbench.log" 2>&1 || { cat "$WORK/dbbench.log" >&2; exit 1; }
DBBENCH_OPS=$(python3 - "$WORK/out" <<'PY'
import json, pathlib, sys
f = next(pathlib.Path(sys.argv[1]).rglob("results.json"))
op = json.loads(f.read_text())["engines"][0]["phases"][0]["ops"][0]
print(f'{op["throughput_ops_s"]:.1f} {op["errors"]} {op["service_time_ms"]["p50"]:.3f}')
PY
)
read -r DB_TPUT DB_ERRS DB_P50 <<<"$DBBENCH_OPS"

ID=$(curl -fsS "$API/collections/$COLLECTION" | python3 -c '
import json, sys
c = json.load(sys.stdin)
# Only a collection dbbench marked as its own is used (and deleted) here.
assert (c.get("metadata") or {}).get("created_by") == "dbbench", "collection not created by dbbench"
print(c["id"])')

# The body the driver sends for query 0: one embedding, n_results 10, nothing included.
python3 - "$DATA/queries.minilm.npy" >"$WORK/body.json" <<'PY'
import ast, json, struct, sys
raw = open(sys.argv[1], "rb").read()
hlen = struct.unpack("<H", raw[8:10])[0] if raw[6] == 1 else struct.unpack("<I", raw[8:12])[0]
start = (10 if raw[6] == 1 else 12) + hlen
header = ast.literal_eval(raw[start - hlen:start].decode("latin1"))
dim = header["shape"][1]
vec = struct.unpack(f"<{dim}f", raw[start:start + 4 * dim])
print(json.dumps({"query_embeddings": [list(vec)], "n_results": 10, "include": []}, separators=(",", ":")))
PY
curl -fsS -X POST -H 'content-type: application/json' --data @"$WORK/body.json" "$API/collections/$ID/query" \
    | python3 -c 'import json,sys; ids=json.load(sys.stdin)["ids"][0]; assert len(ids)==10, ids'

cat >"$WORK/query.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open("$WORK/body.json", "rb"))
wrk.body = f:read("*a")
f:close()
LUA

echo "== wrk -c $C -t $THREADS -d ${D}s POST .../collections/<id>/query"
wrk -c "$C" -t "$THREADS" -d "${D}s" --latency -s "$WORK/query.lua" "$API/collections/$ID/query" >"$WORK/wrk.log"
WRK_TPUT=$(awk '/^Requests\/sec:/ {print $2}' "$WORK/wrk.log")
WRK_BAD=$(awk '/Non-2xx/ {print $NF}' "$WORK/wrk.log"); WRK_BAD="${WRK_BAD:-0}"
WRK_P50=$(awk '$1 == "50%" {print $2}' "$WORK/wrk.log")

curl -fsS -X DELETE "$API/collections/$COLLECTION" >/dev/null

echo
printf '%-8s %12s %10s %10s\n' tool "req/s" errors p50
printf '%-8s %12s %10s %10s\n' dbbench "$DB_TPUT" "$DB_ERRS" "${DB_P50}ms"
printf '%-8s %12s %10s %10s\n' wrk "$WRK_TPUT" "$WRK_BAD" "$WRK_P50"
python3 -c "r = $DB_TPUT / $WRK_TPUT; print(f'dbbench/wrk = {r:.3f} ' + ('(ok: >= 0.9)' if r >= 0.9 else '(below the 0.9 goal)'))"
