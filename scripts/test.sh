#!/usr/bin/env bash
# The whole test suite, with everything it needs, on a fresh machine or a used one:
#   1. installs the system packages the tests use (only what is missing),
#   2. starts every engine the tests talk to with the native launchers in services/
#      (installing each on first use), leaving alone any that is already up,
#   3. builds once (release profile) and runs every test,
#   4. stops exactly the engines it started (also on failure, from the exit trap),
#   5. runs the CI regression gate (workloads/ci.toml, this build against the reference
#      dbbench of benches/ci-gate.ref, interleaved on this machine).
# Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '==> %s\n' "$*"; }

export DEBIAN_FRONTEND=noninteractive
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v curl >/dev/null 2>&1 || missing+=(curl)
# The WordNet builder's tests read Debian's WordNet 3.0.
[ -d /usr/share/wordnet ] || missing+=(wordnet-base)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# elasticsearch-cluster: three more Elasticsearch nodes (127.0.0.1:9201-9203, heap 512m
# each) for tests/es_cluster.rs; 21-41 s to start here, about 2.4 GB while up.
engines=(pgvector chroma elasticsearch neo4j elasticsearch-cluster)
# No registry ships the Qdrant server: with a binary of your own (QDRANT_BIN) it is
# started like the others and its ignored conformance tests run; without one they stay
# ignored (and say why).
if [ -n "${QDRANT_BIN:-}" ] && [ -z "${QDRANT_URL:-}" ]; then
  engines+=(qdrant)
  export QDRANT_URL="http://127.0.0.1:${QDRANT_GRPC_PORT:-6334}"
fi
started=()
stop_started() {
  if [ ${#started[@]} -gt 0 ]; then
    say "stopping the engines this run started: ${started[*]}"
    bash services/down.sh "${started[@]}" || true
  fi
}
trap stop_started EXIT

for e in "${engines[@]}"; do
  state=$(bash services/status.sh "$e" 2>/dev/null | awk -v e="$e" '$1 == e { print $2 }' || true)
  if [ "$state" = "up" ] || [ "$state" = "foreign" ]; then
    say "$e is already up ($state); using it and leaving it running"
    continue
  fi
  say "starting $e"
  started+=("$e")
  bash services/up.sh "$e"
done

say "building (release)"
cargo build --release --all-targets --locked
say "running the tests"
cargo test --release --locked --no-fail-fast "$@"
if [ -n "${QDRANT_URL:-}" ]; then
  say "a Qdrant server at $QDRANT_URL: running its ignored conformance tests"
  cargo test --release --locked --test conformance_qdrant -- --ignored
fi

# The gate measures timings: stop the servers first so idle JVMs and databases do not
# share the two cores with it.
stop_started
started=()
if [ -x benches/ci-gate.sh ]; then
  say "regression gate: workloads/ci.toml, A/B against the reference dbbench (benches/ci-gate.ref)"
  bash benches/ci-gate.sh
fi
