"""rlsys's own lines on the console, and the quiet that keeps them readable.

The job's progress goes to stderr through `console`. Third-party libraries print notices that tell a user
nothing: deprecation warnings inside vLLM's workers, torch's NUMA-binding and vLLM's Triton notices, model
loading progress bars, MLflow's database and experiment chatter, Ray's note on its local token. `quiet()`
turns exactly those off at their source: in this process, and (through `actor_runtime_env`) in every pool
actor's. `rlsys --verbose` (or RLSYS_VERBOSE=1) skips it and shows everything.
"""

import logging
import os
import sys
import warnings

from rich.console import Console

# Logs and CI captures are not terminals: keep one line per event there instead of wrapping at 80 columns.
console = Console(stderr=True, log_path=False, width=None if sys.stderr.isatty() else 200)

# What every actor's process needs whatever the verbosity: vLLM and tokenizers quiet and single-minded.
ACTOR_ENV = {"VLLM_LOGGING_LEVEL": "ERROR", "TOKENIZERS_PARALLELISM": "false"}

# Read at start-up by the libraries, so they go into the environment of this process and of the actors.
QUIET_ENV = {
    "TORCH_CPP_LOG_LEVEL": "ERROR",  # "NUMA binding: Using MEMBIND policy..." from torch's C++ side
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # transformers' "Loading weights" bars
    "TQDM_DISABLE": "1",  # other progress bars drawn into actor logs, a line per refresh
    # vLLM's Triton dispatcher touches a deprecated torch.distributed name on import.
    "PYTHONWARNINGS": "ignore::FutureWarning:vllm.triton_utils.dispatcher",
}

# Loggers whose notices are not for a user of rlsys, and the level they keep.
QUIET_LOGGERS = {
    "vllm.triton_utils.importing": logging.ERROR,  # "Triton is installed, but doesn't include CPU backend"
    "mlflow.store.db.utils": logging.WARNING,  # "Creating initial MLflow database tables..."
    "mlflow.tracking.fluent": logging.WARNING,  # "Experiment with name ... does not exist. Creating..."
    "alembic.runtime.migration": logging.WARNING,  # MLflow's schema migrations of a new store
    "ray._private.authentication.authentication_token_setup": logging.ERROR,  # the local runtime's token
    "mlflow.transformers": logging.ERROR,  # a hub model card and license looked up for a local directory
}


def note(message: str) -> None:
    """Something the user should know that is not an error."""
    console.log(f"[yellow]note:[/] {message}")


def verbose() -> bool:
    return os.environ.get("RLSYS_VERBOSE", "") not in ("", "0")


def quiet() -> None:
    """Silence the notices above in this process (a Ray worker calls it too, as its setup hook)."""
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    warnings.filterwarnings("ignore", category=FutureWarning, module="vllm.triton_utils.dispatcher")
    for name, level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(level)


def actor_runtime_env() -> dict:
    """The runtime environment of the pools' actors: quiet like this process unless verbose."""
    if verbose():
        return {"env_vars": dict(ACTOR_ENV)}
    return {"env_vars": {**ACTOR_ENV, **QUIET_ENV}, "worker_process_setup_hook": "rlsys.console.quiet"}
