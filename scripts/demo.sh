#!/usr/bin/env bash
# Install canary-tui into ./.venv and start the demo on the embedded simulator.
# Usage: scripts/demo.sh [demo options, e.g. --scenario error-regression --speed 5]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "canary-tui needs Python 3.11 or newer (found $("$PYTHON" --version 2>&1))" >&2; exit 2; }
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet .
exec .venv/bin/canary-tui demo "$@"
