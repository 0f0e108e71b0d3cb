#!/usr/bin/env bash
# Build the wheel and sdist, check them, and smoke-test the wheel in a fresh environment
# next to napari, without extras (as napari's plugin manager installs it). Run by
# scripts/setup-and-test.sh after the tests; needs the dev environment of scripts/setup.sh
# (the `release` extra: build, twine, check-wheel-contents). Outputs go to build/.
#
#   bash scripts/check-dist.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}
BIN="$VENV/bin"
[ -d "$VENV/Scripts" ] && BIN="$VENV/Scripts"  # Windows (Git Bash)

# 1. The release artefacts, as the package index will receive them: the sdist, and the wheel
#    built from it (so the sdist is proven complete), checked for metadata that renders and
#    for a wheel without stray or duplicate files.
DIST=build/dist-check
rm -rf "$DIST"
mkdir -p build
start=$SECONDS
"$BIN/python" -m build --outdir "$DIST" . >"$DIST.log" 2>&1 || { cat "$DIST.log"; exit 1; }
"$BIN/twine" check --strict "$DIST"/*
"$BIN/check-wheel-contents" "$DIST"/*.whl
echo "== built and checked $(cd "$DIST" && echo *) in $((SECONDS - start)) s"

# 2. The wheel as napari's plugin manager installs it: a fresh virtual environment with
#    torch and napari (and its Qt binding), then the wheel WITHOUT extras, non-editable; a
#    headless smoke test runs there, from outside the checkout. The dev environment's
#    versions are the constraints: the same torch build, and every wheel already in pip's
#    cache (or the local mirror). No bytecode compilation: most of the 2 GB is never
#    imported, and compiling it all would double the time on 2 cores.
start=$SECONDS
SMOKE=build/smoke-venv
rm -rf "$SMOKE" build/smoke-work
"$PY" -m venv "$SMOKE"
SBIN="$SMOKE/bin"
[ -d "$SMOKE/Scripts" ] && SBIN="$SMOKE/Scripts"
"$BIN/python" -m pip freeze --exclude-editable | grep -v -i '^napari-losslens' \
    >build/smoke-constraints.txt
PIP=("$SBIN/python" -m pip install -q --no-compile -c build/smoke-constraints.txt)
"${PIP[@]}" --upgrade pip
"${PIP[@]}" torch==2.13.0
"${PIP[@]}" "napari[pyqt6]"
"${PIP[@]}" "$(ls "$DIST"/*.whl)"
echo "== fresh environment installed in $((SECONDS - start)) s"
start=$SECONDS
RUN=()
if [ "$(uname -s)" = Linux ] && [ -z "${DISPLAY:-}" ]; then
    RUN=(xvfb-run -a -s "-screen 0 1280x1024x24")
fi
smoke=$(pwd)/scripts/smoke_installed.py
work=$(pwd)/build/smoke-work
python=$(cd "$SBIN" && pwd)/python
(cd "$(mktemp -d)" && ${RUN[@]+"${RUN[@]}"} "$python" "$smoke" "$work")
echo "== smoke test of the installed wheel in $((SECONDS - start)) s"
