"""What the learner loop needs of the pools, the tracker and nothing else: one small Protocol per kind.

The loop is handed objects with these verbs. In the product they are Ray pools (`actors/`) and the MLflow
tracker (`rlsys.tracking`); in the loop's unit tests they are in-memory fakes (`tests/fakes.py`), so the
loop's schedule, resume and bookkeeping are tested in seconds without Ray, vLLM or DeepSpeed.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from rlsys.types import Prompt, Reward, Sample, Sampling, TrainSequence

T_co = TypeVar("T_co", covariant=True)

# One engine call's worth of finished groups: (index of the prompt in the request, its samples).
Chunk = list[tuple[int, list[Sample]]]


class Pending(Protocol[T_co]):
    """Work under way; `concurrent.futures.Future` is one."""

    def done(self) -> bool: ...

    def result(self) -> T_co: ...


class RolloutPool(Protocol):
    """Sampling engines that hold the policy's weights."""

    def generate(
        self, prompts: Sequence[Prompt], sampling: Sampling, seeds: Sequence[int | None]
    ) -> Iterator[Chunk]:
        """`sampling.n` samples of every prompt, in chunks as the engines finish them, in any order.

        `seeds` (one per prompt, None: unseeded) make a rollout the same whichever engine serves it. Every
        sample carries the version last given to `sync_weights` (0 before any).
        """
        ...

    def sync_weights(self, weights: Any, version: int) -> dict[str, float]:
        """Every engine serves `weights` (a `LearnerPool.weights()` handle); later samples carry `version`.

        The pool proves the engines serve the weights the learner sent (a fingerprint of what each engine
        serves after the load, against the learner's) and raises `PoolError` when they do not. Returns the
        sync's gauges: `sync/verified` (the share of engines proven now, 1.0 unless one was lost meanwhile;
        it is re-synced and proven before it serves again) and, where measured, `sync/fingerprint_s`.
        """
        ...

    def autoscale(self, queued: float, budget_s: float) -> None:
        """Between rollouts, where no rollout is in flight: `queued` prompts waited on the engines this step,
        which they may take `budget_s` to clear; grow or shrink on that (`rlsys.autoscale`). A new engine
        serves only after a `sync_weights` has given it the current weights."""
        ...

    def metrics(self) -> dict[str, float]:
        """The pool's `pool/*` gauges (size, backlog, re-dispatched work)."""
        ...


class ScorePool(Protocol):
    """Scorers of samples: the verifiers, or a reward model."""

    def score(self, prompts: Sequence[Prompt], samples: Sequence[Sample]) -> Pending[list[Reward]]:
        """Start scoring `samples[i]` as the answer to `prompts[i]`; the result: one Reward each, in order."""
        ...

    def autoscale(self, queued: float, budget_s: float) -> None:
        """Between rollouts: `queued` samples were still unscored when generation ended, which the pool may
        take `budget_s` to clear; grow or shrink on that (`rlsys.autoscale`)."""
        ...

    def metrics(self) -> dict[str, float]: ...


class LearnerPool(Protocol):
    """The policy's training state (DeepSpeed ranks)."""

    def train_step(self, sequences: Sequence[TrainSequence], *, kl_coef: float) -> dict[str, float]:
        """One optimizer step over all sequences (each stale ones corrected by its `staleness`); returns
        global per-token means (`policy_loss`, `kl`, `logprob_mismatch`...)."""
        ...

    def weights(self) -> Any:
        """A handle on the current weights, for `RolloutPool.sync_weights`."""
        ...

    def save_pretrained(self, directory: str) -> None:
        """The current policy as a Hugging Face model directory."""
        ...

    def save_checkpoint(self, directory: str, tag: str, loop_state: dict) -> None:
        """Model, optimizer and scheduler under `directory/tag`, with the loop's own state beside them."""
        ...

    def load_checkpoint(self, directory: str, tag: str) -> dict:
        """Restore a checkpoint; returns the loop state saved with it."""
        ...


class CriticPool(Protocol):
    """PPO's value model (DeepSpeed ranks of its own)."""

    def values(self, sequences: Sequence[TrainSequence]) -> list[tuple[float, ...]]:
        """The value of every response token of each sequence (the state before the token was chosen)."""
        ...

    def train_step(self, sequences: Sequence[TrainSequence]) -> dict[str, float]:
        """One optimizer step of the value loss toward each sequence's `returns`, clipped around its
        `values`; returns global per-token means (`value_loss`, `value_clip_fraction`, `values`...)."""
        ...

    def save_checkpoint(self, directory: str, tag: str, loop_state: dict) -> None:
        """Model, optimizer and scheduler under `directory/tag`."""
        ...

    def load_checkpoint(self, directory: str, tag: str) -> dict: ...


class Tracker(Protocol):
    """Where a run's record goes (MLflow in the product)."""

    run_id: str

    def log_params(self, params: dict[str, Any]) -> None: ...

    def log_metrics(self, metrics: dict[str, float], step: int) -> None: ...

    def log_table(self, rows: list[dict[str, Any]], artifact_file: str) -> None: ...

    def log_figure(self, figure: Any, artifact_file: str) -> None: ...

    def log_dict(self, data: dict, artifact_file: str) -> None: ...

    def set_tags(self, tags: dict[str, str]) -> None: ...

    def history(self, key: str) -> list[tuple[int, float]]:
        """(step, value) of every logged value of one metric, by step."""
        ...

    def register_model(self, model_dir: str, name: str, lineage: dict[str, str]) -> str:
        """Register a saved policy directory as a new version of model `name`, tagged with its `lineage`
        (`rlsys.lineage`); returns its URI."""
        ...


@dataclass
class Pools:
    """The pools a job runs on. Evaluation scores with the verifiers alone; training adds the reward model.
    A critic trains beside the learner with algorithm.advantage=gae (PPO), and only then."""

    rollout: RolloutPool
    verifier: ScorePool
    learner: LearnerPool
    reward_model: ScorePool | None = None
    critic: CriticPool | None = None

    def scorers(self, *, with_reward_model: bool = True) -> list[ScorePool]:
        extra = [self.reward_model] if with_reward_model and self.reward_model is not None else []
        return [self.verifier, *extra]

    def metrics(self) -> dict[str, float]:
        """Every pool's gauges; a gauge several pools report (re-dispatched work) is summed."""
        merged: dict[str, float] = {}
        for pool in (self.rollout, *self.scorers()):
            for key, value in pool.metrics().items():
                merged[key] = merged.get(key, 0.0) + value
        return merged
