#!/usr/bin/env bash
# Build (or reuse) the project's virtual environment and print its path on the last line.
#
# The venv is keyed on a hash of pyproject.toml and the install recipe below, so a changed dependency list
# builds a new one and an unchanged one is reused across clones on the same machine; each call points the
# venv's editable install at this checkout. Usage:
#   source "$(scripts/setup.sh | tail -n1)/bin/activate"
# RLSYS_EXTRA=gpu on a CUDA machine (default: cpu); RLSYS_VENV overrides the location.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
extra="${RLSYS_EXTRA:-cpu}"
recipe_version=2  # bump when the install steps below change
key="$( (cat "$root/pyproject.toml"; echo "$recipe_version $extra") | sha256sum | cut -c1-12)"
venv="${RLSYS_VENV:-$HOME/.cache/rlsys/venvs/$key-$extra}"
pip="$venv/bin/python -m pip --quiet --disable-pip-version-check"

if [ ! -f "$venv/.complete" ]; then
  echo "rlsys: building the environment in $venv (a few minutes on a fresh machine)" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  $pip install --upgrade pip setuptools wheel >&2
  # The CPU build of torch first: later packages that ask for torch then find it satisfied.
  $pip install "torch==2.13.0" >&2
  # DeepSpeed builds against the installed torch; with build isolation it would fetch another torch.
  $pip install --no-build-isolation "deepspeed>=0.18" >&2
  $pip install "$root[$extra,dev]" >&2
  $pip uninstall -y rlsys >&2
  if [ "$extra" = "cpu" ]; then
    # vLLM's CPU wheel pulls PyPI's torchvision/torchaudio/torchcodec, built for another torch: their
    # operators fail to register and `import transformers` breaks. Nothing here needs them.
    $pip uninstall -y torchvision torchaudio torchcodec >&2 || true
  fi
  "$venv/bin/python" -c "import torch, transformers, vllm, deepspeed, ray, mlflow, sympy" >&2
  touch "$venv/.complete"
fi
if [ "$(cat "$venv/.project_root" 2>/dev/null)" != "$root" ]; then
  # A path entry to this checkout (compat mode), so every top-level package here imports from it.
  $pip install --no-deps --no-build-isolation -e "$root" --config-settings editable_mode=compat >&2
  echo "$root" > "$venv/.project_root"
fi
echo "$venv"
