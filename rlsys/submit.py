"""Ray job submission: run a job on a cluster and follow it from a laptop.

    rlsys submit jobs/cluster_gpu.yaml train.steps=200 --address http://HEAD:8265   # submit, stream logs
    rlsys status JOB_ID | rlsys logs JOB_ID --follow | rlsys stop JOB_ID

`rlsys submit` validates the job locally (a bad config exits 2 before anything is uploaded), then submits
`rlsys run <job> <overrides>` through Ray's job submission API with a runtime env: the project directory as
the working dir (without runs, MLflow stores, caches, .git) and a few environment variables passed through
(`PASSTHROUGH_ENV`). The same job runs on the cluster as it does locally; plain Ray works too:
`ray job submit --address http://HEAD:8265 --working-dir . -- rlsys run jobs/x.yaml`.

The cluster's nodes must have rlsys's environment installed (see `cluster.yaml`): the runtime env ships the
code, not the dependencies. On a cluster with token authentication set `RAY_AUTH_MODE=token` (and
`RAY_AUTH_TOKEN`, or the token in ~/.ray/auth_token), as for `ray job submit`.
"""

import asyncio
import os
import re
import shlex
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from rlsys.config import EMBEDDED_MODEL, JobConfig, load_job
from rlsys.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ADDRESS = "http://127.0.0.1:8265"

# Environment variables that follow a submitted job to the cluster when they are set where it is submitted.
PASSTHROUGH_ENV = ("MLFLOW_TRACKING_URI", "RLSYS_CACHE_DIR", "HF_HOME", "HF_HUB_OFFLINE")

# Not uploaded with the working dir (gitignore syntax, relative to it): run outputs, MLflow stores, caches.
# Ray also skips what the project's .gitignore lists; these hold when that file is missing or differs.
EXCLUDES = [
    ".git",
    "runs/",
    "mlruns/",
    "mlartifacts/",
    "mlflow.db",
    "__pycache__/",
    ".pytest_cache/",
    ".ruff_cache/",
    ".venv/",
    "build/",
    "*.egg-info/",
]

SUBMISSION_ID_ENV = "RLSYS_SUBMISSION_ID"

# Exit status of `rlsys submit` (while following) by the job's final status.
EXIT_STATUS = {"SUCCEEDED": 0, "FAILED": 1, "STOPPED": 1}


@dataclass(frozen=True)
class Submission:
    """What is sent to Ray: the command the cluster runs, and the environment it runs in."""

    entrypoint: str
    runtime_env: dict
    metadata: dict[str, str]
    notes: list[str] = field(default_factory=list)  # things the user should know, printed before submitting


def validate_job(job: str, overrides: Sequence[str]) -> tuple[JobConfig, list[str]]:
    """The job's config, validated here; the model path alone may exist on the cluster only.

    Every key is checked locally. `model.path` names a directory on the cluster's nodes, which this machine
    may not have: when that is the only problem, the job is submitted with a note (the cluster checks it).
    """
    try:
        return load_job(job, overrides), []
    except ConfigError as err:
        try:
            config = load_job(job, [*overrides, f"model.path={EMBEDDED_MODEL}"])
        except ConfigError:
            raise err from None
        problem = str(err).splitlines()[-1].strip()
        return config, [f"{problem}; submitting anyway: it must exist on the cluster's nodes"]


def prepare(
    job: str,
    overrides: Sequence[str] = (),
    *,
    working_dir: str | Path | None = PROJECT_ROOT,
    env: Mapping[str, str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    check_only: bool = False,
) -> Submission:
    """Validate the job and build its submission; raises ConfigError (nothing is submitted) on a bad config.

    `env` is where passed-through variables are read from (default: this process's environment);
    `extra_env` adds or overrides variables of the job's environment. With `check_only` the cluster runs
    `rlsys run --dry-run`: the config is checked there (the model path on its nodes), nothing trains.
    `working_dir=None` uploads nothing: the cluster runs the code its nodes have (a container image,
    cluster.yaml's copy), and the job file is named by its absolute path, which must exist there too.
    """
    config, notes = validate_job(job, overrides)
    job_path = Path(job).resolve()
    if working_dir is not None:
        working_dir = Path(working_dir).resolve()
        if not job_path.is_relative_to(working_dir):
            raise ConfigError(
                f"job file '{job}' is outside the working dir {working_dir}, which is what the cluster "
                f"receives: move it into the project (e.g. jobs/) or pass --working-dir"
            )
    env = os.environ if env is None else env
    env_vars = {name: env[name] for name in PASSTHROUGH_ENV if env.get(name)}
    env_vars.update(extra_env or {})
    check_no_secrets(env_vars)
    if "MLFLOW_TRACKING_URI" not in env_vars and config.tracking.tracking_uri is None:
        notes.append(
            "MLFLOW_TRACKING_URI is not set: the MLflow run is stored in the job's working dir on the "
            "cluster, which Ray deletes eventually; set it to a tracking server (e.g. http://HEAD:5000)"
        )
    if working_dir is None:
        command = ["rlsys", "run", str(job_path), *overrides]
        runtime_env = {"env_vars": env_vars}
    else:
        command = ["rlsys", "run", job_path.relative_to(working_dir).as_posix(), *overrides]
        runtime_env = {"working_dir": str(working_dir), "excludes": list(EXCLUDES), "env_vars": env_vars}
    entrypoint = shlex.join([*command, "--dry-run"] if check_only else command)
    return Submission(entrypoint, runtime_env, {"rlsys_job": config.name}, notes)


# A job's runtime_env is readable by every user of the cluster's job API: no secret may travel in it.
_SECRET_NAME = re.compile(
    r"TOKEN|PASSWORD|PASSWD|SECRET|CREDENTIAL|PRIVATE|API_?KEY|ACCESS_?KEY", re.IGNORECASE
)
_CREDENTIALS_IN_URI = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@\s]+:[^/@\s]*@", re.IGNORECASE)


def check_no_secrets(env_vars: Mapping[str, str]) -> None:
    """Refuse environment variables that would put a secret into the job's runtime_env: names that say
    they hold one, and URIs with a password in them."""
    for name, value in env_vars.items():
        if _SECRET_NAME.search(name):
            raise ConfigError(
                f"--env {name}: a secret would travel in the job's runtime_env, which every user of the job "
                f"API can read; set it in the cluster's environment instead (cluster.yaml setup commands, or "
                f"a Kubernetes secret) and the job reads it there"
            )
        if _CREDENTIALS_IN_URI.search(value):
            raise ConfigError(
                f"{name}: its URI holds a password, which would travel in the job's runtime_env (readable by "
                f"every user of the job API); give the URI without it and set the credentials in the "
                f"cluster's environment (e.g. MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD)"
            )


def resolve_address(address: str | None, env: Mapping[str, str] | None = None) -> str:
    """The dashboard address: the flag, else $RAY_API_SERVER_ADDRESS, else $RAY_ADDRESS, else local."""
    env = os.environ if env is None else env
    return address or env.get("RAY_API_SERVER_ADDRESS") or env.get("RAY_ADDRESS") or DEFAULT_ADDRESS


def connect(address: str | None):
    """A `JobSubmissionClient` for the cluster at `address` (see `resolve_address`)."""
    from ray.job_submission import JobSubmissionClient

    resolved = resolve_address(address)
    # Ray lets RAY_API_SERVER_ADDRESS / RAY_ADDRESS override the address it is given; pin the one chosen
    # here so an explicit --address wins over a stale environment. (Only this CLI process is affected.)
    os.environ["RAY_API_SERVER_ADDRESS"] = resolved
    from ray.exceptions import AuthenticationError

    try:
        return JobSubmissionClient(resolved)
    except AuthenticationError:
        raise ConfigError(
            f"--address: the Ray cluster at {resolved} wants its token: set RAY_AUTH_MODE=token and the "
            f"token (RAY_AUTH_TOKEN, or ~/.ray/auth_token)"
        ) from None
    except (ConnectionError, OSError, ValueError, RuntimeError) as err:  # what Ray raises for a bad address
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(
            f"--address: no Ray job API at {resolved} ({reason}); check the address, or forward the "
            f"cluster's dashboard first (`ray dashboard cluster.yaml`)"
        ) from None


def submit(client, submission: Submission, submission_id: str | None = None) -> str:
    """Submit the job; returns its submission id (by default `rlsys-<job name>-<8 hex>`)."""
    submission_id = submission_id or f"rlsys-{submission.metadata['rlsys_job']}-{uuid.uuid4().hex[:8]}"
    # The job tags its MLflow run with its submission id, so `rlsys status` finds the run's progress.
    env_vars = {**submission.runtime_env["env_vars"], SUBMISSION_ID_ENV: submission_id}
    return client.submit_job(
        entrypoint=submission.entrypoint,
        runtime_env={**submission.runtime_env, "env_vars": env_vars},
        metadata=submission.metadata,
        submission_id=submission_id,
    )


def wait(client, job_id: str, poll_s: float = 1.0) -> str:
    """Block until the job reaches a terminal status; returns it (SUCCEEDED, FAILED or STOPPED)."""
    while not (status := client.get_job_status(job_id)).is_terminal():
        time.sleep(poll_s)
    return str(status)


def follow(client, job_id: str, out: TextIO = sys.stdout) -> str:
    """Stream the job's logs to `out` until it ends; returns its final status."""

    async def tail() -> None:
        async for chunk in client.tail_job_logs(job_id):
            out.write(chunk)
            out.flush()

    asyncio.run(tail())
    # The log stream closes when the driver exits, possibly just before the status is recorded.
    return wait(client, job_id)


def describe(client, job_id: str) -> str:
    """One line per fact of a job: status, message, entrypoint, times."""
    info = client.get_job_info(job_id)
    lines = [f"job: {job_id}", f"status: {info.status}"]
    if info.message:
        lines.append(f"message: {info.message}")
    lines.append(f"entrypoint: {info.entrypoint}")
    for name in ("start_time", "end_time"):
        stamp = getattr(info, name)
        if stamp:  # milliseconds since the epoch
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp / 1000))
            lines.append(f"{name.removesuffix('_time')}: {when}")
    return "\n".join(lines)
