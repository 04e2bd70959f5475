#!/usr/bin/env bash
# Build (or reuse) the project's virtual environment and print its path on the last line.
#
# The venv is keyed on a hash of pyproject.toml and the install recipe below, so a changed dependency list
# builds a new one and an unchanged one is reused across clones on the same machine; each call points the
# venv's editable install at this checkout. Usage:
#   source "$(scripts/setup.sh | tail -n1)/bin/activate"
# RLSYS_EXTRA=gpu on a CUDA machine (default: cpu); RLSYS_VENV overrides the location. pip's own output goes
# to <venv>.log (shown when a step fails); RLSYS_VERBOSE=1 shows it as it runs.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
extra="${RLSYS_EXTRA:-cpu}"
recipe_version=2  # bump when the install steps below change
key="$( (cat "$root/pyproject.toml"; echo "$recipe_version $extra") | sha256sum | cut -c1-12)"
venv="${RLSYS_VENV:-$HOME/.cache/rlsys/venvs/$key-$extra}"
log="$venv.log"
pip="$venv/bin/python -m pip --quiet --disable-pip-version-check"

# One install step: its output to the log (or the terminal when verbose); on failure, the log's tail.
step() {
  local what="$1"; shift
  echo "rlsys: $what" >&2
  if [ "${RLSYS_VERBOSE:-0}" != "0" ]; then
    "$@" >&2
  elif ! "$@" >>"$log" 2>&1; then
    echo "rlsys: failed: $what; the last lines of $log:" >&2
    tail -n 30 "$log" >&2
    return 1
  fi
}

mkdir -p "$(dirname "$venv")"

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
  if ! step "installing ${missing[*]} for the code sandbox" "${as_root[@]}" sh -c \
      'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"' \
      apt "${missing[@]}"; then
    echo "rlsys: WARNING: could not install ${missing[*]}: the code sandbox will refuse to run programs" >&2
  fi
fi

if [ ! -f "$venv/.complete" ]; then
  echo "rlsys: building the environment in $venv (a few minutes on a fresh machine)" >&2
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  : >"$log"
  step "creating the virtualenv" python3 -m venv "$venv"
  step "upgrading pip" $pip install --upgrade pip setuptools wheel
  # The CPU build of torch first: later packages that ask for torch then find it satisfied.
  step "installing torch" $pip install "torch==2.13.0"
  # DeepSpeed builds against the installed torch; with build isolation it would fetch another torch.
  step "installing deepspeed" $pip install --no-build-isolation "deepspeed>=0.18"
  step "installing the dependencies ($extra)" $pip install "$root[$extra,dev]"
  step "removing the non-editable copy" $pip uninstall -y rlsys
  if [ "$extra" = "cpu" ]; then
    # vLLM's CPU wheel pulls PyPI's torchvision/torchaudio/torchcodec, built for another torch: their
    # operators fail to register and `import transformers` breaks. Nothing here needs them.
    step "removing torchvision/torchaudio/torchcodec" $pip uninstall -y torchvision torchaudio torchcodec || true
  fi
  step "checking the imports" "$venv/bin/python" -c "import torch, transformers, vllm, deepspeed, ray, mlflow, sympy"
  touch "$venv/.complete"
fi
if [ "$(cat "$venv/.project_root" 2>/dev/null)" != "$root" ]; then
  # A path entry to this checkout (compat mode), so every top-level package here imports from it.
  step "pointing the environment at $root" \
    $pip install --no-deps --no-build-isolation -e "$root" --config-settings editable_mode=compat
  echo "$root" > "$venv/.project_root"
fi
echo "$venv"
