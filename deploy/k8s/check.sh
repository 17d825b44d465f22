#!/usr/bin/env bash
# Checks the manifests in this folder with kubectl and no cluster: renders the
# kustomization, and decodes every object (rendered, and every other *.yaml here) into
# its Kubernetes type, so broken YAML, an unknown kind or apiVersion, or a value of the
# wrong type (a string for completions, a malformed quantity) fails here, not at apply
# time. tests/k8s_manifests.rs runs this script, and checks what kubectl cannot offline:
# misspelt field names, and that the files agree with each other (shard count, paths,
# names, image). Given a cluster, `kubectl apply --dry-run=server -k .` checks more.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if ! command -v kubectl >/dev/null 2>&1; then
  echo "check.sh: kubectl is not on PATH" >&2
  exit 2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0

echo "kubectl kustomize deploy/k8s"
if ! kubectl kustomize . >"$tmp/rendered.yaml" 2>"$tmp/err"; then
  echo "FAILED: the kustomization does not render:" >&2
  cat "$tmp/err" >&2
  exit 1
fi

# `set env --local --list` reads the objects without a server and decodes each into its
# type; it changes nothing.
for f in "$tmp/rendered.yaml" *.yaml; do
  [ "$f" = kustomization.yaml ] && continue
  name=$f
  [ "$f" = "$tmp/rendered.yaml" ] && name="kustomize output"
  if kubectl set env --local --list -f "$f" >/dev/null 2>"$tmp/err"; then
    echo "ok      $name"
  else
    echo "FAILED  $name:" >&2
    cat "$tmp/err" >&2
    failed=1
  fi
done

if [ "$failed" != 0 ]; then
  echo "check.sh: a manifest is broken (above)" >&2
  exit 1
fi
echo "check.sh: all manifests render and decode"
