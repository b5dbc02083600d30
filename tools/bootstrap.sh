#!/usr/bin/env bash
# Create .venv with everything `make run` and `make test` need, on a fresh Debian/Ubuntu
# (VENV=.venv-tools EXTRAS=tools: the training tools' environment, which `make test` also uses).
# System packages (python3-venv; libsystemd-dev, pkg-config and a compiler for
# systemd-python) are installed with apt when missing and we are root or have sudo.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
EXTRAS=${EXTRAS:-desktop}  # setup.cfg extras besides test: desktop (make run), tools (training, torch CPU)

as_root() {
  # sudo may ask for a password at a terminal; without one (CI), only where it needs none
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then if [ -t 0 ]; then sudo "$@"; else sudo -n "$@"; fi
  else return 1; fi
}

need_apt=()
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || need_apt+=(python3-venv)
pkg-config --exists libsystemd 2>/dev/null || need_apt+=(libsystemd-dev pkg-config)
command -v cc >/dev/null 2>&1 || need_apt+=(gcc)
"$PYTHON" -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null || need_apt+=(python3-dev)
if [ ${#need_apt[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "bootstrap: installing ${need_apt[*]} with apt"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq || true
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null \
    || echo "bootstrap: could not install ${need_apt[*]}; continuing without them"
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
if [[ ",$EXTRAS," == *",tools,"* ]] && ! "$VENV/bin/python" -c 'import torch' 2>/dev/null; then
  # torch==2.13.0 from plain PyPI is the CUDA build (gigabytes). The CPU wheel comes from a
  # local wheel directory (PIP_FIND_LINKS) when one has it, else from PyTorch's CPU index;
  # torch's own dependencies come with the install below, from the usual index. Where neither
  # has it, that install takes torch from the usual index too, as before.
  torch_pin=$(grep -oE 'torch==[0-9.]+' setup.cfg)  # the one pin, in setup.cfg's tools extra
  "$VENV/bin/python" -m pip install -q --no-index --no-deps "$torch_pin" 2>/dev/null \
    || "$VENV/bin/python" -m pip install -q --no-deps --timeout 20 --retries 1 "$torch_pin" \
         --index-url "${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}" \
    || echo "bootstrap: no CPU wheel of $torch_pin found; taking torch from the default index"
fi
"$VENV/bin/python" -m pip install -q -e ".[$EXTRAS,test]" \
  || { echo "bootstrap: systemd-python did not build; installing without it (sd_notify tests will skip)";
       "$VENV/bin/python" -m pip install -q -e ".[$EXTRAS]" pytest; }
touch "$VENV/.installed"
