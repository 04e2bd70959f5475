"""The errors a user of rlsys sees.

    RlsysError            raised on purpose; the CLI prints its message in one line, no traceback
    ├── ConfigError        a job config is malformed; the message names the key and the fix (exit status 2)
    ├── ModelNotFoundError a model path is not a Hugging Face model directory (exit status 2)
    ├── DataError          a data file is malformed; the message names the file, the line and the fix (exit 2)
    ├── RewardError        reward functions failed on too many samples of a step (exit status 2)
    ├── PoolError          a pool could not complete its work after re-dispatching it (exit status 1)
    ├── StorageError       the run's output folder could not be written (disk full, read-only) (exit status 1)
    ├── TrackingError      the MLflow tracking server did not answer within tracking.retry_timeout_s (exit 1)
    ├── ClusterError       the Ray cluster in RAY_ADDRESS did not answer within its connect deadline (exit 1)
    └── Interrupted        Ctrl-C or SIGTERM stopped a run; says where to resume from (exit status 130)

Everything else (a bug, a crashed library) propagates as it is.
"""


class RlsysError(Exception):
    """Base class of the errors rlsys raises on purpose."""

    exit_status = 2  # bad input the user can fix


class ConfigError(RlsysError):
    """A job config or override is invalid."""


class ModelNotFoundError(RlsysError):
    """A model path does not name a loadable model."""


class DataError(RlsysError):
    """A data file (prompts, rankings) is missing or malformed."""


class RewardError(RlsysError):
    """Reward functions failed (raised, overran) on more of a step's samples than the job allows."""


class PoolError(RlsysError):
    """A pool gave up on a piece of work (every retry hit a dead actor)."""

    exit_status = 1


class StorageError(RlsysError):
    """Writing a run's files (checkpoint, policy, prompt record) failed: the message names the folder and the
    reason; what was written whole before stays (only complete checkpoints are resumed)."""

    exit_status = 1


class TrackingError(RlsysError):
    """The MLflow tracking server stayed unreachable past `tracking.retry_timeout_s`."""

    exit_status = 1


class ClusterError(RlsysError):
    """The Ray head a driver was pointed at (RAY_ADDRESS) did not answer in time: Ray itself would retry a
    dead head for ever."""

    exit_status = 1


class Interrupted(RlsysError):
    """The user stopped a run (Ctrl-C, SIGTERM); the message says what was kept and how to resume."""

    exit_status = 130
