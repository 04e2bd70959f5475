"""The reward-model trainer: a DeepSpeed engine over the scalar-head model, a ranking-loss step and a held-out
evaluation. A plain class; `rlsys train-rm` (`rlsys.rm_job`) runs one in its own process, as one rank."""

import torch

from actors.deepspeed_engine import build_engine, free_port, join_process_group
from rlsys.config import torch_dtype
from rlsys.rlhf.config import RMTrainConfig
from rlsys.rlhf.losses import RANKING_LOSSES, pair_metrics
from rlsys.rlhf.monitor import Spread
from rlsys.rlhf.reward_model import (
    EncodedRanking,
    forward_scores,
    init_reward_model,
    ranking_tensors,
    save_reward_model,
    unflatten,
)


class RewardModelTrainer:
    """One rank training a reward model from `base` with the ranking loss `config.loss`."""

    def __init__(self, base: str, config: RMTrainConfig, *, dtype: str, seed: int) -> None:
        join_process_group(0, 1, *free_port())
        self.loss_fn = RANKING_LOSSES[config.loss]
        model = init_reward_model(base, torch_dtype(dtype), seed)
        self.pad_id = model.config.pad_token_id
        self.engine = build_engine(
            model, config, dtype=torch_dtype(dtype), micro_batch_size=config.rankings_per_batch
        )

    def train_step(self, batch: list[EncodedRanking]) -> dict[str, float]:
        self.engine.train()
        input_ids, mask, ranks, valid, sizes = ranking_tensors(batch, self.pad_id)
        rewards = unflatten(forward_scores(self.engine, input_ids, mask).float(), sizes)  # (B, K)
        loss, metrics = self.loss_fn(rewards, ranks.to(rewards.device), valid.to(rewards.device))
        self.engine.backward(loss)
        self.engine.step()
        metrics["grad_norm"] = float(self.engine.get_global_grad_norm() or 0.0)
        metrics["lr"] = self.engine.get_lr()[0]
        return metrics

    @torch.no_grad()
    def evaluate(self, rankings: list[EncodedRanking], batch_size: int = 32) -> dict[str, float]:
        """Loss and pair metrics over every held-out ranking at once, and where its scores lie: their
        median and robust spread are the reward-hacking monitor's reference for outlying scores."""
        self.engine.eval()
        rewards, ranks, valid = [], [], []
        for start in range(0, len(rankings), batch_size):
            input_ids, mask, batch_ranks, batch_valid, sizes = ranking_tensors(
                rankings[start : start + batch_size], self.pad_id
            )
            scores = unflatten(forward_scores(self.engine.module, input_ids, mask).float().cpu(), sizes)
            rewards += list(scores)
            ranks += list(batch_ranks)
            valid += list(batch_valid)
        pad = torch.nn.utils.rnn.pad_sequence
        rewards_t, ranks_t = pad(rewards, batch_first=True), pad(ranks, batch_first=True)
        valid_t = pad(valid, batch_first=True)
        loss, _ = self.loss_fn(rewards_t, ranks_t, valid_t)
        spread = Spread.of(rewards_t[valid_t].tolist())
        return {
            "loss": loss.item(),
            **pair_metrics(rewards_t, ranks_t, valid_t),
            "score_median": spread.median,
            "score_scale": spread.scale,
        }

    def save(self, tokenizer, directory, info: dict) -> None:
        """The trained model as a Hugging Face directory with `info` beside it (`save_reward_model`)."""
        save_reward_model(self.engine.module, tokenizer, directory, info)
