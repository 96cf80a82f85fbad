#!/usr/bin/env bash
# What the JavaScript tests need: Debian's Chromium (the browser playground's end-to-end
# test) and the npm packages in package.json (onnxruntime-node for the exports/README.md
# snippets, onnxruntime-web and playwright-core for the playground), installed with
# --ignore-scripts: playwright-core never downloads a browser, onnxruntime-node ships its CPU
# library in the package and its install script would only fetch CUDA ones. Then the ONNX
# Runtime C/C++ headers the C++ snippets compile against (scripts/check_cpp_snippets.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing chromium (Debian package)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium \
      >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium \
      >/dev/null; }
  else
    echo "warning: chromium is missing and cannot be installed here (needs root and apt-get);" \
         "the browser test will fail" >&2
  fi
fi
if [ ! -d "$ROOT/node_modules/onnxruntime-node" ] || \
   [ "$ROOT/package-lock.json" -nt "$ROOT/node_modules/.package-lock.json" ]; then
  echo "==> installing the npm packages (npm ci --ignore-scripts)"
  (cd "$ROOT" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
fi
bash "$ROOT/scripts/check_cpp_snippets.sh" --headers >/dev/null
