#!/usr/bin/env bash
# The test command: install what the tests need, then run the whole suite.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh" test
bash "$ROOT/scripts/js_setup.sh"
cd "$ROOT"
exec python -m pytest -q "$@"
