#!/usr/bin/env bash
# Set up everything from scratch (scripts/setup.sh), run the whole test suite, then build
# the wheel and sdist, check them, and try the wheel as a user installs it: the README's
# test line, and what CI (.ci/run) calls.
#
#   bash scripts/setup-and-test.sh            # set up, test, build and smoke-test the wheel
#   bash scripts/setup-and-test.sh -k weight  # extra arguments go to pytest
#   SKIP_DIST=1 bash scripts/setup-and-test.sh   # the tests only (no build, no fresh venv)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}

bash scripts/setup.sh
BIN="$VENV/bin"
[ -d "$VENV/Scripts" ] && BIN="$VENV/Scripts"  # Windows (Git Bash)

# 3. Checks: lint, the import layers, the napari manifest, then the tests (Xvfb is started by pytest-xvfb on
#    Linux; macOS and Windows have a display of their own).
XVFB=()
[ "$(uname -s)" = Linux ] || XVFB=(--no-xvfb)
"$BIN/ruff" check src tests scripts
"$BIN/ruff" format --check src tests scripts
"$BIN/lint-imports"                  # the one-way layers (contracts in pyproject.toml)
"$BIN/npe2" validate napari-losslens
"$BIN/python" -m pytest ${XVFB[@]+"${XVFB[@]}"} "$@"

# 4. The wheel and sdist, built, checked and installed as a user installs them.
[ "${SKIP_DIST:-0}" = 1 ] || bash scripts/check-dist.sh
