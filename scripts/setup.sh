#!/usr/bin/env bash
# Create .venv with the pinned dependencies and AMFL installed in editable mode.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -r requirements-dev.txt
.venv/bin/pip install --quiet --no-deps -e .
echo "AMFL installed in $(pwd)/.venv"
