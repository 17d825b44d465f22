#!/usr/bin/env bash
# dbbench's own memory at scale: peak RSS of `dbbench run` on the no-op engine against
# the raw bytes of the vectors it holds.
#
#   benches/noop_rss.sh [DOCS] [DIM] [QUERIES]
#   defaults:            1000000 384 1000
#
# Writes a workload to target/noop-rss/ (seeded synthetic clustered vectors, a few words
# of text per record, no attributes; one kNN phase of 1,000 requests on the no-op
# engine), runs it under /usr/bin/time -v with an empty ground-truth cache (so the exact
# search is part of the run), and prints the wall time, peak RSS and the ratio
# peak RSS / (DOCS x DIM x 4 bytes). dbbench holds one copy of the vectors: the goal is
# a ratio <= 1.1. Needs a release build (cargo build --release) and GNU time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

docs=${1:-1000000}
dim=${2:-384}
queries=${3:-1000}
dir=target/noop-rss
bin=target/release/dbbench
[ -x "$bin" ] || { echo "noop_rss: $bin is missing: run cargo build --release first" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "noop_rss: /usr/bin/time is missing: apt-get install time" >&2; exit 2; }
rm -rf "$dir" && mkdir -p "$dir"
cat > "$dir/workload.toml" <<TOML
[workload]
name = "noop-rss"
seed = 42
[dataset]
source = "synthetic"
[dataset.synthetic]
docs = $docs
queries = $queries
dim = $dim
metric = "cosine"
clusters = 64
vocabulary = 1000
words_per_doc = 4
[engines.noop]
driver = "noop"
[[phases]]
name = "knn"
requests = 1000
concurrency = 2
[[phases.ops]]
op = "knn"
k = 10
TOML
/usr/bin/time -v "$bin" run "$dir/workload.toml" --cache "$dir/cache" --out "$dir/out" --no-progress \
  > "$dir/run.log" 2> "$dir/time.log" || { tail -20 "$dir/run.log" "$dir/time.log" >&2; exit 1; }
wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$dir/time.log")
rss_kib=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$dir/time.log")
awk -v d="$docs" -v m="$dim" -v r="$rss_kib" -v w="$wall" 'BEGIN {
  raw = d * m * 4; rss = r * 1024;
  printf "docs %d x dim %d: raw vectors %.3f GB, peak RSS %.3f GB, ratio %.3f, wall %s\n", d, m, raw / 1e9, rss / 1e9, rss / raw, w
}'
