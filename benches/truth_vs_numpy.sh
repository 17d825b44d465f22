#!/usr/bin/env bash
# Exact ground truth, dbbench against numpy, on the same vectors and the same machine.
#
#   benches/truth_vs_numpy.sh [DOCS] [DIM] [QUERIES] [K] [ROUNDS]
#   defaults:                 1000000 384  1000     10  3
#
# Writes seeded clustered float32 vectors (L2-normalised, as sentence embeddings are) to
# target/truth-bench/, then in each round runs numpy's exact search (blocked `Q @ B.T`
# with OpenBLAS, then a partial sort per block: the obvious baseline) and dbbench's
# (`examples/exact_truth.rs`, the code `dbbench run` uses), alternating which goes first.
# Both compute cosine distance from the raw vectors and time the search alone, not file
# reading. Prints each round, the median seconds of each, and the ratio numpy/dbbench
# (above 1: dbbench is faster), and checks that both found the same neighbours: a query
# whose sets differ counts as a tie only if the differing neighbours' exact distances
# (float64) equal the k-th distance within 1e-6; anything else fails the script.
#
# numpy comes from a venv under target/ (pip install numpy) unless python3 has it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

docs=${1:-1000000}
dim=${2:-384}
queries=${3:-1000}
k=${4:-10}
rounds=${5:-3}
dir=target/truth-bench
mkdir -p "$dir"

py=python3
if ! python3 -c 'import numpy' 2>/dev/null; then
  if [ ! -x target/bench-venv/bin/python ]; then
    echo "==> numpy: creating target/bench-venv (pip install numpy)"
    python3 -m venv target/bench-venv
    target/bench-venv/bin/pip install --quiet --disable-pip-version-check numpy
  fi
  py=target/bench-venv/bin/python
fi
"$py" -c 'import numpy, sys; print("==> numpy", numpy.__version__, "python", sys.version.split()[0])'
"$py" -c 'import numpy; c = numpy.show_config(mode="dicts"); print("==> BLAS:", c["Build Dependencies"]["blas"]["name"])' 2>/dev/null || true

echo "==> building dbbench's example (release)"
cargo build --release --locked --example exact_truth
exe=target/release/examples/exact_truth

base="$dir/base-$docs-$dim.npy"
qs="$dir/queries-$queries-$dim.npy"
if [ ! -f "$base" ] || [ ! -f "$qs" ]; then
  echo "==> writing $docs x $dim base vectors and $queries queries to $dir"
  "$py" - "$base" "$qs" "$docs" "$dim" "$queries" <<'EOF'
import sys, numpy as np
base_path, q_path, n, d, nq = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
rng = np.random.default_rng(42)
centers = rng.standard_normal((256, d)).astype(np.float32)
def draw(count):
    out = np.empty((count, d), dtype=np.float32)
    for s in range(0, count, 100_000):
        e = min(count, s + 100_000)
        x = centers[rng.integers(0, 256, e - s)] + 0.6 * rng.standard_normal((e - s, d)).astype(np.float32)
        out[s:e] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out
np.save(base_path, draw(n))
np.save(q_path, draw(nq))
EOF
fi

numpy_search() {
  "$py" - "$base" "$qs" "$k" "$dir/numpy.ids" <<'EOF'
import sys, time, numpy as np
base = np.load(sys.argv[1], mmap_mode=None); q = np.load(sys.argv[2]); k = int(sys.argv[3])
t = time.perf_counter()
qn = np.linalg.norm(q, axis=1)
best_d = np.full((len(q), k), np.inf, dtype=np.float32)
best_i = np.zeros((len(q), k), dtype=np.int64)
block = 65536
for s in range(0, len(base), block):
    b = base[s:s + block]
    dist = 1.0 - (q @ b.T) / np.outer(qn, np.linalg.norm(b, axis=1))
    part = np.argpartition(dist, min(k, dist.shape[1] - 1), axis=1)[:, :k]
    cand_d = np.concatenate([best_d, np.take_along_axis(dist, part, axis=1)], axis=1)
    cand_i = np.concatenate([best_i, part + s], axis=1)
    keep = np.argpartition(cand_d, k - 1, axis=1)[:, :k]
    best_d = np.take_along_axis(cand_d, keep, axis=1)
    best_i = np.take_along_axis(cand_i, keep, axis=1)
order = np.argsort(best_d, axis=1, kind="stable")
ids = np.take_along_axis(best_i, order, axis=1)
print(f"seconds {time.perf_counter() - t:.3f}")
ids.astype(np.uint32).tofile(sys.argv[4])
EOF
}

dbbench_search() {
  "$exe" "$base" "$qs" "$k" cosine "$dir/dbbench.ids"
}

declare -a t_numpy t_dbbench
for r in $(seq 1 "$rounds"); do
  if [ $((r % 2)) -eq 1 ]; then order="numpy dbbench"; else order="dbbench numpy"; fi
  for who in $order; do
    s=$("${who}_search" | awk '/^seconds/ { print $2 }')
    if [ "$who" = numpy ]; then t_numpy+=("$s"); else t_dbbench+=("$s"); fi
    echo "round $r: $who ${s}s"
  done
done

"$py" - "$base" "$qs" "$k" "$dir/numpy.ids" "$dir/dbbench.ids" "${t_numpy[*]}" "${t_dbbench[*]}" <<'EOF'
import sys, numpy as np
base = np.load(sys.argv[1], mmap_mode="r"); q = np.load(sys.argv[2]); k = int(sys.argv[3])
a = np.fromfile(sys.argv[4], dtype=np.uint32).reshape(len(q), k)
b = np.fromfile(sys.argv[5], dtype=np.uint32).reshape(len(q), k)
tn = np.median([float(x) for x in sys.argv[6].split()])
td = np.median([float(x) for x in sys.argv[7].split()])
def exact(qi, ids):
    v = base[ids].astype(np.float64); x = q[qi].astype(np.float64)
    return 1.0 - v @ x / (np.linalg.norm(v, axis=1) * np.linalg.norm(x))
differ = ties = 0
for i in range(len(q)):
    sa, sb = set(a[i].tolist()), set(b[i].tolist())
    if sa == sb:
        continue
    differ += 1
    kth = max(exact(i, a[i]).max(), exact(i, b[i]).max())
    odd = np.array(sorted(sa ^ sb), dtype=np.int64)
    if np.all(np.abs(exact(i, odd) - kth) <= 1e-6):
        ties += 1
overlap = np.mean([len(set(a[i].tolist()) & set(b[i].tolist())) / k for i in range(len(q))])
print(f"same neighbours: {len(q) - differ} of {len(q)} queries; {ties} differ only by ties at the k-th place; mean overlap {overlap:.5f}")
print(f"median seconds: numpy {tn:.2f}, dbbench {td:.2f}")
print(f"ratio numpy/dbbench: {tn / td:.2f} (above 1: dbbench is faster; goal >= 1.0)")
sys.exit(0 if differ == ties else 1)
EOF
