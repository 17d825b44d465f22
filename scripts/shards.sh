#!/usr/bin/env bash
# N dbbench processes as the shards of one run against one server engine on this
# machine, merged, with the merge checked against what the shards really sent.
#
#   scripts/shards.sh [N] [ENGINE] [WORKLOAD]      (defaults: 3 pgvector workloads/sharded.toml)
#
# Needs the engine up (services/up.sh pgvector, or elasticsearch) and a release build
# (cargo build --release). Each shard keeps every request (--raw-latencies); the script
# prints, per open-loop phase, the requests sent against the planned number and the
# merged target rate, and per op the merged p50/p99 beside the exact percentiles of the
# union of the shards' raw latencies (they agree to HdrHistogram's 3 significant
# digits; tests/shards.rs checks the merge bucket for bucket). Exit 1 if a check fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

n="${1:-3}"
engine="${2:-pgvector}"
workload="${3:-workloads/sharded.toml}"
bin="${DBBENCH_BIN:-target/release/dbbench}"
[ -x "$bin" ] || { echo "no $bin: run cargo build --release first" >&2; exit 2; }
lead="${SHARDS_LEAD:-20}"   # seconds for ground truth and shard 0's load

out="results/shards-$(date -u +%Y%m%dT%H%M%SZ)"
start_at=$(date -u -d "+${lead} sec" +%Y-%m-%dT%H:%M:%SZ)
mkdir -p "$out"
echo "==> $n shards of $workload against $engine, starting at $start_at; logs and results in $out/"
pids=()
for ((i = 0; i < n; i++)); do
  "$bin" run "$workload" --engines "$engine" --shard "$i/$n" --start-at "$start_at" \
    --out "$out/shard-$i" --no-progress --raw-latencies >"$out/shard-$i.log" 2>&1 &
  pids+=("$!")
done
failed=0
for ((i = 0; i < n; i++)); do
  if ! wait "${pids[$i]}"; then
    echo "shard $i failed; see $out/shard-$i.log" >&2
    failed=1
  fi
done

"$bin" report "$out"/shard-*/results.json --out "$out/merged" >/dev/null
echo "==> merged: $out/merged/report.html"
python3 - "$out" "$n" "$engine" <<'PY' || failed=1
import json, math, os, sys

out, n, engine = sys.argv[1], int(sys.argv[2]), sys.argv[3]
merged = json.load(open(f"{out}/merged/results.json"))
ok = True
run = merged["run"]
print(f"run complete: {run['complete']}" + ("" if run["complete"] else f" ({run['incomplete_reason']})"))
ok &= run["complete"]
eng = next(e for e in merged["engines"] if e["name"] == engine)

def raw(phase, label):
    rows = []
    for i in range(n):
        path = f"{out}/shard-{i}/raw/{engine}/{phase}/{label}.tsv"
        if not os.path.exists(path):
            continue
        for line in open(path):
            if not line.startswith("#"):
                due, lat, good = line.split("\t")
                rows.append((None if due == "-" else int(due), int(lat), good.strip() == "1"))
    return rows

def exact(sorted_values, q):
    rank = min(max(math.ceil(q * len(sorted_values)), 1), len(sorted_values))
    return sorted_values[rank - 1]

for p in eng["phases"]:
    sent = sum(o["count"] + o["errors"] for o in p["ops"])
    planned = p["schedule"].get("requests")
    line = f"phase {p['name']}: {sent} requests"
    if p.get("rate"):
        line += f", target {p['rate']['target_ops_s']:.1f}/s (planned {p['schedule']['rate']:.1f}/s), achieved {p['rate']['achieved_ops_s']:.1f}/s"
        ok &= abs(p["rate"]["target_ops_s"] - p["schedule"]["rate"]) < 1e-6
    if planned and p["schedule"]["mode"] == "open":
        line += f", planned {planned}"
        ok &= sent == planned
    print(line)
    for o in p["ops"]:
        lat = sorted(r[1] for r in raw(p["name"], o["label"]) if r[2])
        if not lat:
            continue
        u50, u99 = exact(lat, 0.5) / 1e6, exact(lat, 0.99) / 1e6
        m50, m99 = o["latency_ms"]["p50"], o["latency_ms"]["p99"]
        close = all(abs(m - u) <= u * 1e-3 + 1e-6 for m, u in ((m50, u50), (m99, u99)))
        ok &= close and o["count"] == len(lat)
        print(f"  {o['label']:<14} {o['count']:>7} ok  merged p50 {m50:.3f} ms p99 {m99:.3f} ms"
              f" | union of raw p50 {u50:.3f} ms p99 {u99:.3f} ms {'ok' if close else 'DIFFERENT'}")
print("checks:", "ok" if ok else "FAILED")
sys.exit(0 if ok else 1)
PY
exit "$failed"
