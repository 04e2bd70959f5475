#!/usr/bin/env bash
# Set up the environment (first run: a few minutes), then run the quickstart job on the embedded model:
# build the tiny model if it is not cached, measure held-out accuracy, train with GRPO, measure again.
#   bash scripts/quickstart.sh [key=value ...]    # overrides, e.g. train.steps=20
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$(bash scripts/setup.sh | tail -n1)"
exec "$venv/bin/rlsys" run jobs/quickstart.yaml "$@"
