#!/usr/bin/env bash
# Set up everything from scratch: system packages for headless Qt, a virtual environment
# with the CPU build of torch, and the project with all its extras. Safe to rerun: each step
# skips what is already there. Used by the README's quick start and by setup-and-test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=${VENV:-.venv}

# 1. System packages for headless Qt tests (Debian/Ubuntu; needs root or sudo).
PKGS="xvfb xauth libxcb-icccm4 libxcb-keysyms1 libgl1 libegl1 libglx-mesa0 libgl1-mesa-dri
libfontconfig1 fonts-dejavu-core libdbus-1-3 libglib2.0-0 libx11-xcb1 libxkbcommon-x11-0
libxcb-cursor0 libxcb-image0 libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xfixes0
libxcb-xkb1 libxcb-sync1"
if command -v dpkg-query >/dev/null 2>&1; then
    missing=""
    for p in $PKGS; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
            || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        SUDO=""
        [ "$(id -u)" -ne 0 ] && SUDO="sudo"
        echo "== installing system packages:$missing"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
            $missing >/dev/null
    fi
fi

# 2. A virtual environment with the CPU build of torch pinned first (a looser spec would
#    pull a multi-GB CUDA build), then the project with its test and docs extras (the test
#    extra brings napari with its Qt binding, and the build and check tools of a release).
[ -x "$VENV/bin/python" ] || [ -x "$VENV/Scripts/python.exe" ] || "$PY" -m venv "$VENV"
BIN="$VENV/bin"
[ -d "$VENV/Scripts" ] && BIN="$VENV/Scripts"  # Windows (Git Bash)
"$BIN/python" -m pip install -q --upgrade pip
"$BIN/python" -m pip install -q torch==2.13.0
"$BIN/python" -m pip install -q -c .ci/constraints.txt -e ".[test,docs]"
# the real nuclei sample ships in the stardist wheel; its data files are all we read
"$BIN/python" -m pip install -q -c .ci/constraints.txt --no-deps stardist
# an independent reference for the Lovász and MCC losses; without its dependencies (they
# include torchvision, which does not import beside the CPU torch): the tests load only
# segmentation_models_pytorch/losses and skip when it is absent
"$BIN/python" -m pip install -q -c .ci/constraints.txt --no-deps segmentation-models-pytorch
