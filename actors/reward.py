"""The reward-model worker: scores batches of (prompt messages, response) with a trained reward model.

A plain class, built and tested without Ray; the reward pool runs replicas of it as Ray actors
(`ray.remote(RewardModelScorer)`), sized on their own like the verifier pool. Scoring is a plain Hugging Face
forward (`rlsys.rlhf.reward_model.score`): the reward model is small and reads whole sequences, so no
generation engine is involved.
"""

from collections.abc import Sequence

import torch

from rlsys.config import torch_dtype
from rlsys.rlhf.reward_model import load_reward_model, reward_model_info, score
from rlsys.types import Reward


class RewardModelScorer:
    """One reward model in memory; `rewards` is what the pool calls."""

    def __init__(
        self,
        model_dir: str,
        *,
        name: str = "reward_model",
        weight: float = 1.0,
        batch_size: int = 64,
        threads: int = 0,
        dtype: str = "float32",
    ) -> None:
        if threads:
            torch.set_num_threads(threads)
        self.model, self.tokenizer = load_reward_model(model_dir, torch_dtype(dtype))
        if torch.cuda.is_available():  # a GPU the pool reserved (num_gpus); CPU otherwise
            self.model.cuda()
        info = reward_model_info(model_dir)
        # Score with the truncation the model was trained with; a model from elsewhere gets its context size.
        self.max_length = info.get("max_length", self.model.config.max_position_embeddings)
        self.batch_size = batch_size
        self.name, self.weight = name, weight

    def ready(self) -> None:
        """Returns once the model is loaded (the pool's start-up check)."""

    def rewards(self, prompts: Sequence[Sequence[dict[str, str]]], responses: Sequence[str]) -> list[Reward]:
        """The scores as rewards: `weight * score` toward the total, the score itself as component `name`."""
        return [Reward(self.weight * value, {self.name: value}) for value in self.score(prompts, responses)]

    def score(self, prompts: Sequence[Sequence[dict[str, str]]], responses: Sequence[str]) -> list[float]:
        """One scalar reward per response, in order; `prompts[i]` is the chat `responses[i]` answers."""
        return score(
            self.model,
            self.tokenizer,
            prompts,
            responses,
            batch_size=self.batch_size,
            max_length=self.max_length,
        )
