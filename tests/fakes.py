"""In-memory stand-ins for the pools and the tracker (the verbs of `rlsys.protocols`), so the learner loop
runs in a unit test in seconds: no Ray, no vLLM, no DeepSpeed, no MLflow.

- `FakeRolloutPool`: answers from a rule (right more often the more learner steps its weights carry), as real
  `Sample`s with byte token ids and log-probs; its "engines" hand their chunks back last to first. With tool
  calls allowed, a right answer is one that called the tool: a call, the tool turn (masked), the answer.
- `ThreadedScorePool`: a real scorer (`rlsys.rewards.Verifier` by default) on worker threads, so calls can
  finish out of order.
- `FakeLearnerPool`: records what it is sent, returns metrics, versions its "weights", saves and restores
  checkpoints as JSON.
- `FakeCriticPool`: one value for every token, which each step moves halfway to the mean return; records what
  it is sent and checkpoints as JSON.
- `InMemoryTracker`: params, metrics, tables, figures and tags in dicts.
"""

import json
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlsys.config import VerifierConfig
from rlsys.protocols import Chunk, Pools
from rlsys.rewards import Verifier
from rlsys.types import Prompt, Reward, Sample, Sampling, ToolCall, TrainSequence


def encode(text: str) -> tuple[int, ...]:
    """A byte tokenizer: one token per UTF-8 byte."""
    return tuple(text.encode())


@dataclass(frozen=True)
class FakeWeights:
    learner_steps: int  # optimizer steps the weights have taken


def _uniform(*parts: object) -> float:
    """A deterministic number in [0, 1) for the given parts."""
    return zlib.crc32(repr(parts).encode()) / 2**32


@dataclass
class FakeRolloutPool:
    """Each answer is right with probability `base + gain * learner_steps` (capped at 0.95), decided by a hash
    of (prompt, sample index, seed, weights): the same request to the same weights gets the same answers.

    Prompts listed in `always_right` are answered right every time, so their groups carry no signal. A greedy
    request (temperature 0) draws one answer per prompt from the prompt alone.
    """

    engines: int = 3
    base: float = 0.3
    gain: float = 0.05
    always_right: frozenset[str] = frozenset()
    weights: FakeWeights = FakeWeights(0)
    version: int = 0
    synced: list[int] = field(default_factory=list)  # every version it was given, in order
    generating: bool = False  # a rollout is under way
    # (queued, budget_s, whether a rollout was under way) of every autoscale call
    autoscaled: list[tuple[float, float, bool]] = field(default_factory=list)

    def generate(
        self, prompts: Sequence[Prompt], sampling: Sampling, seeds: Sequence[int | None]
    ) -> Iterator[Chunk]:
        size = -(-len(prompts) // self.engines)
        starts = list(range(0, len(prompts), size))
        self.generating = True
        try:
            for start in reversed(starts):  # the last engine finishes first
                yield [
                    (i, [self._sample(prompts[i], j, seeds[i], sampling) for j in range(sampling.n)])
                    for i in range(start, min(start + size, len(prompts)))
                ]
        finally:
            self.generating = False

    def _sample(self, prompt: Prompt, j: int, seed: int | None, sampling: Sampling) -> Sample:
        draw = (
            _uniform(prompt.id) if sampling.temperature == 0 else _uniform(prompt.id, j, seed, self.weights)
        )
        skill = min(0.95, self.base + self.gain * self.weights.learner_steps)
        right = prompt.id in self.always_right or draw < skill
        text = f"#### {prompt.gold}" if right else f"#### {int(prompt.gold) + 1}"
        calls = (
            (ToolCall(f"print({prompt.gold})", prompt.gold, False, 0.01),)
            if right and sampling.max_tool_calls
            else ()
        )
        # Each call's tokens (trained) and its tool turn (not), then the answer (trained).
        parts = []
        for call in calls:
            parts += [(encode(f"<call>{call.code}</call>"), 1), (encode(f"<tool>{call.output}</tool>"), 0)]
        parts.append((encode(text), 1))
        tokens = tuple(t for ids, _ in parts for t in ids)[: sampling.max_new_tokens]
        mask = tuple(m for ids, m in parts for _ in ids)[: len(tokens)] if calls else ()
        return Sample(
            prompt_id=prompt.id,
            prompt_token_ids=encode(prompt.messages[-1]["content"])[:32],
            token_ids=tokens,
            text=text,
            logprobs=tuple(-0.5 if m else 0.0 for m in (mask or [1] * len(tokens))),
            finish_reason="stop",
            policy_version=self.version,
            loss_mask=mask,
            tool_calls=calls,
        )

    def sync_weights(self, weights: FakeWeights, version: int) -> dict[str, float]:
        self.weights, self.version = weights, version
        self.synced.append(version)
        return {"sync/verified": 1.0}  # the weights are the learner's own object

    def autoscale(self, queued: float, budget_s: float) -> None:
        self.autoscaled.append((queued, budget_s, self.generating))

    def metrics(self) -> dict[str, float]:
        return {"pool/rollout_replicas": self.engines}


class ThreadedScorePool:
    """A real scorer on `workers` threads; the first call waits `first_delay_s` so later ones overtake it, and
    with `hold_first_until` it first waits (at most 10 s) until that many calls have been made, so it is
    still unscored when the last chunk's generation ends, however slow the machine."""

    def __init__(
        self,
        scorer: Any = None,
        *,
        workers: int = 2,
        first_delay_s: float = 0.05,
        hold_first_until: int | None = None,
    ) -> None:
        self.scorer = scorer or Verifier(VerifierConfig(rewards={"math": 1.0}, timeout_s=5.0))
        self.executor = ThreadPoolExecutor(max_workers=workers)
        self.delay_s = first_delay_s
        self.hold_first_until = hold_first_until
        self.calls = 0
        self.enough_calls = threading.Event()
        self.autoscaled: list[tuple[float, float]] = []  # (queued, budget_s)

    def score(self, prompts: Sequence[Prompt], samples: Sequence[Sample]) -> Future[list[Reward]]:
        hold = self.calls == 0 and self.hold_first_until is not None
        delay, self.delay_s = self.delay_s, 0.0
        self.calls += 1
        if self.hold_first_until is not None and self.calls >= self.hold_first_until:
            self.enough_calls.set()
        return self.executor.submit(self._score, list(prompts), [s.text for s in samples], delay, hold)

    def _score(self, prompts: list[Prompt], texts: list[str], delay: float, hold: bool) -> list[Reward]:
        if hold:
            self.enough_calls.wait(timeout=10.0)
        time.sleep(delay)
        return self.scorer.score(prompts, texts)

    def autoscale(self, queued: float, budget_s: float) -> None:
        self.autoscaled.append((queued, budget_s))

    def metrics(self) -> dict[str, float]:
        return {"pool/verifier_replicas": 1.0}


@dataclass(frozen=True)
class TrainCall:
    sequences: tuple[TrainSequence, ...]
    kl_coef: float


@dataclass
class FakeLearnerPool:
    """Counts optimizer steps as its weights' version; `fail_at_call` raises on that train_step call."""

    steps: int = 0
    calls: list[TrainCall] = field(default_factory=list)
    saved: list[tuple[str, int]] = field(default_factory=list)  # (directory, steps) of every save_pretrained
    fail_at_call: int | None = None
    logprob_mismatch: float = 0.01  # what every step reports

    def train_step(self, sequences: Sequence[TrainSequence], *, kl_coef: float) -> dict:
        self.calls.append(TrainCall(tuple(sequences), kl_coef))
        if self.fail_at_call == len(self.calls):
            raise RuntimeError(f"learner crashed at call {len(self.calls)}")
        self.steps += 1
        metrics = {
            "policy_loss": -sum(s.advantage for s in sequences) / len(sequences),
            "lr": 1e-4,
            "logprob_mismatch": self.logprob_mismatch,
        }
        if kl_coef > 0:
            metrics["kl"] = 0.01 * self.steps  # the policy drifts from the reference as it trains
        return metrics

    def weights(self) -> FakeWeights:
        return FakeWeights(self.steps)

    def save_pretrained(self, directory: str) -> None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        (Path(directory) / "weights.json").write_text(json.dumps({"learner_steps": self.steps}))
        self.saved.append((directory, self.steps))

    def save_checkpoint(self, directory: str, tag: str, loop_state: dict) -> None:
        path = Path(directory) / tag
        path.mkdir(parents=True, exist_ok=True)
        (path / "state.json").write_text(json.dumps({"learner_steps": self.steps, "loop_state": loop_state}))

    def load_checkpoint(self, directory: str, tag: str) -> dict:
        state = json.loads((Path(directory) / tag / "state.json").read_text())
        self.steps = state["learner_steps"]
        return state["loop_state"]


@dataclass
class FakeCriticPool:
    """Values every token at `value`; each step moves it halfway to the batch's mean return."""

    value: float = 0.0
    steps: int = 0
    calls: list[tuple[TrainSequence, ...]] = field(default_factory=list)  # what each train_step was sent

    def values(self, sequences: Sequence[TrainSequence]) -> list[tuple[float, ...]]:
        return [(self.value,) * len(s.token_ids) for s in sequences]

    def train_step(self, sequences: Sequence[TrainSequence]) -> dict[str, float]:
        self.calls.append(tuple(sequences))
        returns = [r for s in sequences for r in s.returns]
        loss = sum((self.value - r) ** 2 for r in returns) / (2 * len(returns))
        self.value += 0.5 * (sum(returns) / len(returns) - self.value)
        self.steps += 1
        return {"value_loss": loss, "value_clip_fraction": 0.0, "values": self.value}

    def save_checkpoint(self, directory: str, tag: str, loop_state: dict) -> None:
        path = Path(directory) / tag
        path.mkdir(parents=True, exist_ok=True)
        (path / "critic.json").write_text(json.dumps({"value": self.value, "steps": self.steps}))

    def load_checkpoint(self, directory: str, tag: str) -> dict:
        state = json.loads((Path(directory) / tag / "critic.json").read_text())
        self.value, self.steps = state["value"], state["steps"]
        return {}


@dataclass
class InMemoryTracker:
    run_id: str = "fake-run"
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    tables: dict[str, list[dict]] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)
    dicts: dict[str, dict] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    registered: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def log_params(self, params: dict[str, Any]) -> None:
        self.params.update(params)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        for key, value in metrics.items():
            self.metrics.setdefault(key, []).append((step, float(value)))

    def log_table(self, rows: list[dict[str, Any]], artifact_file: str) -> None:
        self.tables[artifact_file] = list(rows)

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        self.figures.append(artifact_file)

    def log_dict(self, data: dict, artifact_file: str) -> None:
        self.dicts[artifact_file] = data

    def set_tags(self, tags: dict[str, str]) -> None:
        self.tags.update(tags)

    def history(self, key: str) -> list[tuple[int, float]]:
        return sorted(self.metrics.get(key, []), key=lambda item: item[0])

    def register_model(self, model_dir: str, name: str, lineage: dict[str, str]) -> str:
        self.registered.append((model_dir, name, lineage))
        return f"models:/{name}/{len(self.registered)}"

    def at(self, key: str) -> dict[int, float]:
        """A metric by step (the last value where a step was logged twice)."""
        return dict(self.history(key))


def fake_pools(*, critic: bool = False, **rollout: Any) -> Pools:
    """A fake rollout pool (keyword arguments go to it), the real verifier on threads, a fake learner; with
    `critic`, a fake critic (for algorithm.name=ppo)."""
    return Pools(
        rollout=FakeRolloutPool(**rollout),
        verifier=ThreadedScorePool(),
        learner=FakeLearnerPool(),
        critic=FakeCriticPool() if critic else None,
    )


def answers(golds: Sequence[str], texts: Sequence[str]) -> tuple[list[Prompt], list[Sample]]:
    """Prompts with the given golds and one sample answering each with the given text, for scoring pools."""
    prompts = [
        Prompt(f"q{i}", ({"role": "user", "content": f"Question {i}?"},), g) for i, g in enumerate(golds)
    ]
    samples = [
        Sample(p.id, (1,), encode(text), text, (-0.5,) * len(text.encode()), "stop", 0)
        for p, text in zip(prompts, texts, strict=True)
    ]
    return prompts, samples
