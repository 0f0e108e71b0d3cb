#!/usr/bin/env bash
# Set up everything from scratch (scripts/setup.sh) and run the whole test suite: the
# README's test line, and what CI (.ci/run) calls.
#
#   bash scripts/setup-and-test.sh            # set up and run the tests
#   bash scripts/setup-and-test.sh -k weight  # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}

bash scripts/setup.sh

# 3. Checks: lint, the napari manifest, then the tests (Xvfb is started by pytest-xvfb).
"$VENV/bin/ruff" check src tests scripts
"$VENV/bin/ruff" format --check src tests scripts
"$VENV/bin/npe2" validate napari-losslens
"$VENV/bin/python" -m pytest "$@"
