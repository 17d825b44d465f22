#!/usr/bin/env bash
# How often the A/B gate is right, measured on this machine (the figures in
# docs/ci-gate.md come from this script). Four kinds of pair, PAIRS of each:
#
#   gate     benches/ci-gate.sh with the candidate as both sides: workloads/ci.toml on
#            sqlite, an equal pair; every failure is a false alarm
#   equal    dbbench compare --ab benches/gate/base.toml base.toml (scripted engine,
#            10 ms service time, recall@50 0.90); every failure is a false alarm
#   slow     base.toml against slow.toml (service time +30%); every pass is a miss
#   recall   base.toml against recall.toml (recall 0.02 lower); every pass is a miss
#
# The scripted engine is dbbench's own test double (programmed service times and
# recall); it stands in for no real engine here: it is a change of known size.
#
# Environment: DBBENCH [target/release/dbbench], PAIRS [10], KINDS ["gate equal slow
# recall"], ROUNDS [5], THRESHOLD [15%], OUT [results/gate-power-<UTC timestamp>].
# Prints one line per pair and a summary; exits 1 if the goals (0 false alarms, at least
# 9 of 10 detections) are missed.
set -euo pipefail
cd "$(dirname "$0")/.."

DBBENCH=${DBBENCH:-target/release/dbbench}
PAIRS=${PAIRS:-10}
KINDS=${KINDS:-gate equal slow recall}
ROUNDS=${ROUNDS:-5}
THRESHOLD=${THRESHOLD:-15%}
OUT=${OUT:-results/gate-power-$(date -u +%Y%m%dT%H%M%SZ)}
[[ -x "$DBBENCH" ]] || { echo "gate-power: $DBBENCH not found; build it with: cargo build --release --all-targets --locked" >&2; exit 2; }
mkdir -p "$OUT"

declare -A failed passed
for kind in $KINDS; do
    failed[$kind]=0
    passed[$kind]=0
    for ((i = 1; i <= PAIRS; i++)); do
        dir=$OUT/$kind-$(printf %02d "$i")
        status=0
        case $kind in
            gate)
                DBBENCH_GATE_REF_BIN=$DBBENCH DBBENCH_GATE_OUT=$dir DBBENCH_GATE_ROUNDS=$ROUNDS \
                    DBBENCH_GATE_THRESHOLD=$THRESHOLD bash benches/ci-gate.sh >"$dir.log" 2>&1 || status=$?
                ;;
            equal | slow | recall)
                candidate=benches/gate/base.toml
                [[ $kind == slow ]] && candidate=benches/gate/slow.toml
                [[ $kind == recall ]] && candidate=benches/gate/recall.toml
                "$DBBENCH" compare --ab benches/gate/base.toml "$candidate" --rounds "$ROUNDS" --out "$dir" \
                    --max-regression "$THRESHOLD" --metric p50_ms,throughput_ops_s,recall_at_k \
                    --cache "$OUT/cache" >"$dir.log" 2>&1 || status=$?
                ;;
            *) echo "gate-power: unknown kind $kind (gate, equal, slow, recall)" >&2; exit 2 ;;
        esac
        case $status in
            0) passed[$kind]=$((passed[$kind] + 1)) ;;
            1) failed[$kind]=$((failed[$kind] + 1)) ;;
            *) echo "gate-power: $kind pair $i: exit $status, not a verdict (log: $dir.log)" >&2; tail -5 "$dir.log" >&2; exit 2 ;;
        esac
        verdict=$(grep -E '^(PASS|FAIL)' "$dir.log" | tail -1 || true)
        changes=$(grep -E '(p50_ms|throughput_ops_s|recall_at_k) ' "$dir.log" | awk '{printf "%s %s %s; ", $3, $4, $7}' || true)
        printf '%-6s %2d  exit %d  %s\n        %s\n' "$kind" "$i" "$status" "$verdict" "$changes"
    done
done

echo
goal_missed=0
for kind in $KINDS; do
    case $kind in
        gate | equal)
            echo "$kind: ${failed[$kind]} false alarm(s) in $PAIRS equal pairs (goal 0)"
            ((failed[$kind] == 0)) || goal_missed=1
            ;;
        slow | recall)
            echo "$kind: caught ${failed[$kind]} of $PAIRS (goal at least 9 of 10)"
            ((failed[$kind] * 10 >= 9 * PAIRS)) || goal_missed=1
            ;;
    esac
done
echo "logs and rounds: $OUT"
exit "$goal_missed"
