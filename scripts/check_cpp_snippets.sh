#!/usr/bin/env bash
# The C++ snippets of exports/README.md, compiled with g++ and run on fresh exports.
#
#   bash scripts/check_cpp_snippets.sh [HEADERS_DIR]  their tests (test_readme_snippets.py -k cpp)
#   bash scripts/check_cpp_snippets.sh --headers      print the headers folder, fetching it first
#
# HEADERS_DIR holds onnxruntime_cxx_api.h and the other ONNX Runtime C/C++ headers (e.g. the
# include/ folder of a GitHub release archive onnxruntime-linux-x64-<ver>.tgz). Without it the
# headers of ONNX Runtime 1.29.0 come from the npm package com.github.asus4.onnxruntime
# 0.4.9 (a Unity plugin whose iOS framework ships them; `npm pack`, no install scripts run),
# cached in ${XDG_CACHE_HOME:-~/.cache}/gameadapt/. The programs link against the
# libonnxruntime.so.1 of node_modules/onnxruntime-node (scripts/js_setup.sh installs it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PACKAGE="com.github.asus4.onnxruntime@0.4.9"
SLICE="package/Plugins/iOS~/onnxruntime.xcframework/ios-arm64/onnxruntime.framework/Headers"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/gameadapt/onnxruntime-1.29.0-headers"

fetch_headers() {
  if [ -f "$CACHE/onnxruntime_cxx_api.h" ]; then return; fi
  local work
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  (cd "$work" && npm pack "$PACKAGE" --ignore-scripts --silent >/dev/null)
  tar -xzf "$work"/*.tgz -C "$work" --wildcards "$SLICE/*.h"
  mkdir -p "$(dirname "$CACHE")"
  rm -rf "$CACHE.partial" && mv "$work/$SLICE" "$CACHE.partial" && mv "$CACHE.partial" "$CACHE"
}

if [ "${1:-}" = "--headers" ]; then
  fetch_headers >&2
  echo "$CACHE"
  exit 0
fi
if [ -n "${1:-}" ]; then
  HEADERS="$(cd "$1" && pwd)"
else
  fetch_headers
  HEADERS="$CACHE"
fi
if [ ! -f "$HEADERS/onnxruntime_cxx_api.h" ]; then
  echo "no onnxruntime_cxx_api.h in $HEADERS" >&2
  exit 1
fi
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
cd "$ROOT"
GAMEADAPT_ORT_HEADERS="$HEADERS" GAMEADAPT_TORCH_THREADS=1 exec "$PYTHON" -m pytest -q \
  -p no:cacheprovider tests/test_readme_snippets.py -k cpp
