#!/usr/bin/env bash
# The regression gate: run workloads/ci.toml on sqlite and compare it with the committed
# baseline. Exit 0 no regression, 1 regression (or the engine missing from the run),
# 2 bad input (e.g. ci.toml changed since the baseline: regenerate it, see docs/ci-gate.md).
#
# Environment:
#   DBBENCH                 the dbbench binary [target/release/dbbench]
#   DBBENCH_GATE_BASELINE   the baseline [results/baselines/ci-sqlite]
#   DBBENCH_GATE_OUT        where this run goes [results/ci-gate-<UTC timestamp>]
#   DBBENCH_GATE_THRESHOLD  --max-regression [25%]
#   DBBENCH_GATE_REPEAT     measured repetitions of each phase [3]
#   DBBENCH_GATE_METRICS    metrics gated [p50_ms,throughput_ops_s,recall_at_k,ndcg_at_10]
#
# Why no p99 by default: on a shared 2-core machine the p99 of sub-millisecond embedded
# ops is set by the scheduler, not by dbbench or the engine (a parallel compile tripled
# it in one of our runs while p50 and throughput held). compare still reports p99 when
# asked (DBBENCH_GATE_METRICS=p50_ms,p99_ms,...); gate on it on dedicated runners.
#
# Why 25% and 3 repetitions: on a shared 2-core CI machine, unchanged runs of ci.toml
# differ by 10-30% in throughput and more in tail latency (docs/ci-gate.md has the
# figures). Three repetitions give the bootstrap three samples a side, so the whole 95%
# interval must clear 25% before the gate fails: a real 2x slowdown fails, a noisy
# neighbour usually does not.
set -euo pipefail
cd "$(dirname "$0")/.."

DBBENCH=${DBBENCH:-target/release/dbbench}
BASELINE=${DBBENCH_GATE_BASELINE:-results/baselines/ci-sqlite}
OUT=${DBBENCH_GATE_OUT:-results/ci-gate-$(date -u +%Y%m%dT%H%M%SZ)}
THRESHOLD=${DBBENCH_GATE_THRESHOLD:-25%}
REPEAT=${DBBENCH_GATE_REPEAT:-3}
METRICS=${DBBENCH_GATE_METRICS:-p50_ms,throughput_ops_s,recall_at_k,ndcg_at_10}

if [[ ! -x "$DBBENCH" ]]; then
    echo "ci-gate: $DBBENCH not found; build it with: cargo build --release" >&2
    exit 2
fi

"$DBBENCH" run workloads/ci.toml --engines sqlite --repeat "$REPEAT" --require-all --no-progress --out "$OUT"

# One comparison, three renderings: the text table on stdout, Markdown and JSON beside the run.
status=0
"$DBBENCH" compare "$BASELINE" "$OUT" --max-regression "$THRESHOLD" --metric "$METRICS" \
    --markdown "$OUT/compare.md" --json "$OUT/compare.json" || status=$?
if [[ -n "${GITHUB_STEP_SUMMARY:-}" && -f "$OUT/compare.md" ]]; then
    cat "$OUT/compare.md" >> "$GITHUB_STEP_SUMMARY"
fi
echo "ci-gate: exit $status (comparison in $OUT/compare.md and compare.json)"
exit "$status"
