"""Train a reward model from rankings with DeepSpeed; log to MLflow; save an HF-loadable model.

    rlsys train-rm jobs/rm_quickstart.yaml train.epochs=1       # or: python -m rlsys.rlhf.train_rm ...
    ray job submit --address http://HEAD:8265 --working-dir . -- rlsys train-rm jobs/rm_quickstart.yaml

One process, one DeepSpeed rank (gloo on CPU): a reward model is small next to its policy, and its data
is a few thousand rankings. Each step takes `rankings_per_batch` rankings, scores all their responses in
one forward, and applies the ranking loss (`rlsys.rlhf.losses`). Prompts are split into train and
held-out once; held-out pairwise accuracy and margin are logged every `eval_every` steps and at the end.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from rlsys.config import EMBEDDED_MODEL, ModelConfig, torch_dtype
from rlsys.rlhf.config import RMConfig, RMTrainConfig
from rlsys.rlhf.data import Ranking, load_pairs, load_rankings, write_rankings
from rlsys.rlhf.losses import RANKING_LOSSES, pair_metrics
from rlsys.rlhf.monitor import Spread
from rlsys.rlhf.reward_model import collate, encode, forward_scores, init_reward_model, save_reward_model


@dataclass(frozen=True)
class RMSummary:
    run_id: str
    model_dir: str
    heldout_accuracy: float
    heldout_margin: float
    train_rankings: int
    heldout_rankings: int


def resolve_base(model: ModelConfig) -> str:
    """The causal LM to start from: the given path, or the embedded model (built on first use)."""
    if model.path != EMBEDDED_MODEL:
        return str(Path(model.path).expanduser().resolve())
    from rlsys.bootstrap import ensure_embedded_model

    return str(ensure_embedded_model(seed=model.seed))


def load_data(config: RMConfig, base: str) -> tuple[list[Ranking], str]:
    """The rankings to train on and where they live: the configured file, or generated ones (cached)."""
    data = config.data
    if data.path is not None:
        loader = load_rankings if data.format == "ranking" else load_pairs
        return loader(data.path), data.path
    from rlsys.rlhf import preference

    # The key covers the preference's source too: editing the people must not reuse their old rankings.
    spec = json.dumps({"base": base, **data.generate.model_dump()}, sort_keys=True)
    key = hashlib.sha256(spec.encode() + Path(preference.__file__).read_bytes()).hexdigest()[:12]
    path = Path(config.train.output_dir) / config.name / "data" / f"rankings-{key}.jsonl"
    if path.is_file():
        return load_rankings(path), str(path)
    g = data.generate
    rankings = preference.generate_rankings(
        base,
        g.prompts,
        g.responses_per_prompt,
        split=g.split,
        seed=g.seed,
        temperature=g.temperature,
        max_new_tokens=g.max_new_tokens,
        perturb_share=g.perturb_share,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    write_rankings(rankings, partial)
    partial.rename(path)  # a file under the final name is always complete
    return rankings, str(path)


def split_heldout(rankings: list[Ranking], share: float) -> tuple[list[Ranking], list[Ranking]]:
    """Train and held-out rankings, split by a stable hash of the prompt: one prompt never lands in both."""

    def bucket(ranking: Ranking) -> float:
        text = json.dumps(ranking.prompt, sort_keys=True).encode()
        return int.from_bytes(hashlib.sha256(text).digest()[:8], "big") / 2**64

    train = [r for r in rankings if bucket(r) >= share]
    heldout = [r for r in rankings if bucket(r) < share]
    if not train or not heldout:
        raise ValueError(
            f"{len(rankings)} rankings split into {len(train)} train and {len(heldout)} held-out; "
            f"add data or change data.heldout_share"
        )
    return train, heldout


@dataclass(frozen=True)
class EncodedRanking:
    sequences: tuple[tuple[int, ...], ...]  # token ids of each response, prompt included
    ranks: tuple[int, ...]


def encode_rankings(tokenizer, rankings: list[Ranking], max_length: int) -> list[EncodedRanking]:
    return [
        EncodedRanking(
            tuple(tuple(encode(tokenizer, r.prompt, resp, max_length)) for resp in r.responses), r.ranks
        )
        for r in rankings
    ]


def ranking_tensors(batch: list[EncodedRanking], pad_id: int):
    """Inputs of one step: (N, T) ids and mask of every response, and (B, K) ranks and validity."""
    sizes = [len(item.ranks) for item in batch]
    width = max(sizes)
    input_ids, mask = collate([seq for item in batch for seq in item.sequences], pad_id)
    ranks = torch.zeros((len(batch), width), dtype=torch.long)
    valid = torch.zeros((len(batch), width), dtype=torch.bool)
    for row, item in enumerate(batch):
        ranks[row, : sizes[row]] = torch.tensor(item.ranks)
        valid[row, : sizes[row]] = True
    return input_ids, mask, ranks, valid, sizes


def unflatten(scores: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """(N,) scores of the responses in batch order -> (B, K) padded with zeros (masked by `valid`)."""
    return torch.nn.utils.rnn.pad_sequence(list(torch.split(scores, sizes)), batch_first=True)


class RewardModelTrainer:
    """A DeepSpeed engine over the scalar-head model, with a train step and a held-out evaluation."""

    def __init__(self, base: str, settings: RMTrainConfig, *, dtype: str, seed: int) -> None:
        import deepspeed

        from actors.learner import free_port, set_rank_env

        logging.getLogger("DeepSpeed").setLevel(logging.WARNING)
        set_rank_env(0, 1, *free_port())
        deepspeed.init_distributed(dist_backend="nccl" if torch.cuda.is_available() else "gloo")
        self.settings = settings
        self.loss_fn = RANKING_LOSSES[settings.loss]
        model = init_reward_model(base, torch_dtype(dtype), seed)
        self.pad_id = model.config.pad_token_id
        optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
        warmup = settings.warmup_steps
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min(1.0, (step + 1) / warmup) if warmup else 1.0
        )
        self.engine, *_ = deepspeed.initialize(
            model=model,
            optimizer=optimizer,
            lr_scheduler=scheduler,
            config={
                "train_micro_batch_size_per_gpu": settings.rankings_per_batch,
                "gradient_accumulation_steps": 1,
                "gradient_clipping": settings.grad_clip,
                "zero_optimization": {"stage": settings.zero_stage},
                "zero_allow_untested_optimizer": True,
                "bf16": {"enabled": dtype == "bfloat16"},
                "fp16": {"enabled": dtype == "float16"},
                "steps_per_print": 2**31,
            },
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


def run(config: RMConfig) -> RMSummary:
    """The whole job: data, split, training with periodic held-out eval, save; everything in MLflow."""
    from transformers import AutoTokenizer

    from rlsys.tracking import Tracker

    if config.train.torch_threads:
        torch.set_num_threads(config.train.torch_threads)  # generation of the rankings uses it too
    base = resolve_base(config.model)
    rankings, data_path = load_data(config, base)
    train, heldout = split_heldout(rankings, config.data.heldout_share)
    tokenizer = AutoTokenizer.from_pretrained(base)
    train_enc = encode_rankings(tokenizer, train, config.data.max_length)
    heldout_enc = encode_rankings(tokenizer, heldout, config.data.max_length)
    # The monitor's length reference: answers much longer than these are beyond what the model learned from.
    mean_response_tokens = statistics.fmean(
        len(tokenizer(response, add_special_tokens=False)["input_ids"])
        for ranking in heldout
        for response in ranking.responses
    )

    tracker = Tracker(config.tracking, run_name=config.tracking.run_name or config.name)
    try:
        tracker.log_params({**config.flat(), "model.resolved_path": base, "data.resolved_path": data_path})
        tracker.log_params(
            {
                "data.train_rankings": len(train),
                "data.heldout_rankings": len(heldout),
                "data.heldout_mean_response_tokens": round(mean_response_tokens, 2),
            }
        )
        summary = _train(config, base, tokenizer, tracker, train_enc, heldout_enc, mean_response_tokens)
    except BaseException:
        tracker.finish("FAILED")
        raise
    tracker.finish()
    return summary


def _train(
    config: RMConfig, base, tokenizer, tracker, train_enc, heldout_enc, mean_response_tokens: float
) -> RMSummary:
    settings = config.train
    trainer = RewardModelTrainer(base, settings, dtype=config.model.dtype, seed=config.seed)
    rng = random.Random(config.seed)
    per_epoch = -(-len(train_enc) // settings.rankings_per_batch)
    total = per_epoch * settings.epochs
    step, started = 0, time.perf_counter()
    tracker.log_metrics({f"rm/heldout_{k}": v for k, v in trainer.evaluate(heldout_enc).items()}, step=0)
    for _ in range(settings.epochs):
        order = list(range(len(train_enc)))
        rng.shuffle(order)
        for start in range(0, len(order), settings.rankings_per_batch):
            step += 1
            batch = [train_enc[i] for i in order[start : start + settings.rankings_per_batch]]
            metrics = trainer.train_step(batch)
            tracker.log_metrics({f"rm/{k}": v for k, v in metrics.items()}, step=step)
            if settings.eval_every and step % settings.eval_every == 0 and step < total:
                held = trainer.evaluate(heldout_enc)
                tracker.log_metrics({f"rm/heldout_{k}": v for k, v in held.items()}, step=step)
                print(
                    f"step {step}/{total}  loss {metrics['loss']:.3f}  held-out accuracy "
                    f"{held['pair_accuracy']:.3f}  margin {held['margin']:.2f}",
                    file=sys.stderr,
                )
    held = trainer.evaluate(heldout_enc)
    tracker.log_metrics({f"rm/heldout_{k}": v for k, v in held.items()}, step=step)
    tracker.log_metrics({"time/train_s": time.perf_counter() - started}, step=step)
    out = Path(settings.output_dir) / config.name / tracker.run_id / "reward_model"
    info = {
        "base_model": base,
        "loss": settings.loss,
        "max_length": config.data.max_length,
        "heldout_pair_accuracy": held["pair_accuracy"],
        "heldout_margin": held["margin"],
        "heldout_pairs": held["pairs"],
        "score_median": held["score_median"],
        "score_scale": held["score_scale"],
        "mean_response_tokens": mean_response_tokens,
        "mlflow_run_id": tracker.run_id,
    }
    save_reward_model(trainer.engine.module, tokenizer, out, info)
    tracker.log_artifacts(out, "reward_model")
    return RMSummary(
        run_id=tracker.run_id,
        model_dir=str(out),
        heldout_accuracy=held["pair_accuracy"],
        heldout_margin=held["margin"],
        train_rankings=len(train_enc),
        heldout_rankings=len(heldout_enc),
    )


if __name__ == "__main__":
    from rlsys.rlhf.cli import main

    sys.exit(main(sys.argv[1:]))
