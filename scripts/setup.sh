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

# System packages of the code sandbox: bubblewrap (namespaces without root) and libseccomp's bindings for the
# system python3, which build its seccomp filter. Outside the venv's key: checked on every call (one dpkg
# query), installed with apt when missing (through sudo when not root). A failed install does not stop the
# setup, which the rest of the project does not need it for; it says so, and the sandbox's probe then refuses
# to run programs, naming what is missing.
sandbox_packages=(bubblewrap python3-seccomp)
missing=()
if command -v dpkg-query >/dev/null; then
  for package in "${sandbox_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
  done
else
  echo "rlsys: no dpkg here; the code sandbox needs ${sandbox_packages[*]} (or their equivalents)" >&2
fi
if [ "${#missing[@]}" -gt 0 ]; then
  as_root=()
  [ "$(id -u)" -eq 0 ] || as_root=(sudo -n)
  echo "rlsys: installing ${missing[*]} for the code sandbox" >&2
  if ! { "${as_root[@]}" apt-get update -qq && "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >&2; then
    echo "rlsys: WARNING: could not install ${missing[*]}: the code sandbox will refuse to run programs" >&2
  fi
fi

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
