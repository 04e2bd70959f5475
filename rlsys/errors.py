"""The errors a user of rlsys sees.

    RlsysError
    ├── ConfigError        a job config is malformed; the message names the key and the fix (exit status 2)
    ├── ModelNotFoundError a model path is not a Hugging Face model directory (exit status 2)
    └── PoolError          a pool could not complete its work after re-dispatching it to restarted actors

Everything else (a bug, a crashed library) propagates as it is.
"""


class RlsysError(Exception):
    """Base class of the errors rlsys raises on purpose."""


class ConfigError(RlsysError):
    """A job config or override is invalid."""


class ModelNotFoundError(RlsysError):
    """A model path does not name a loadable model."""


class PoolError(RlsysError):
    """A pool gave up on a piece of work (every retry hit a dead actor)."""
