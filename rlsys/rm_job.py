"""`rlsys train-rm JOB`: train a reward model from rankings on the learner pool; log to MLflow; save it.

    rlsys train-rm jobs/rm_quickstart.yaml train.epochs=1 learner.replicas=2   # locally (its own Ray runtime)
    ray job submit --address http://HEAD:8265 --working-dir . -- rlsys train-rm jobs/rm_quickstart.yaml

Rankings are read (or generated) and encoded before any actor starts. Each step takes `rankings_per_batch`
rankings and hands them to the learner pool (`learner.replicas` DeepSpeed ranks,
`actors.trainer_pools.RayRewardModelPool`), which splits them among its ranks, scores their responses and
takes one optimizer step on the ranking loss (`rlsys.rlhf.losses`), the same step whatever the number of
ranks. Prompts are split into train and held-out once; held-out pairwise accuracy and margin are logged
every `eval_every` steps and at the end, and saved with the model.
"""

import hashlib
import json
import random
import statistics
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch

from actors.cluster import session, start_named_pools
from actors.trainer_pools import RayRewardModelPool
from rlsys.console import console
from rlsys.errors import Interrupted
from rlsys.job import stop_on_sigterm
from rlsys.models import resolve_model
from rlsys.rlhf.config import RMConfig
from rlsys.rlhf.data import Ranking, load_pairs, load_rankings, split_heldout, write_rankings
from rlsys.rlhf.reward_model import EncodedRanking, encode_rankings
from rlsys.tracking import Tracker


@dataclass(frozen=True)
class RMSummary:
    run_id: str
    model_dir: str
    heldout_accuracy: float
    heldout_margin: float
    train_rankings: int
    heldout_rankings: int


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


def run(config: RMConfig) -> RMSummary:
    """The whole job: data, split, the learner pool up, training with periodic held-out eval, save;
    everything in MLflow."""
    from transformers import AutoTokenizer

    stop_on_sigterm()
    if config.data.generate.torch_threads:
        torch.set_num_threads(config.data.generate.torch_threads)
    base = resolve_model(config.model)
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
    try:
        with session():
            stop_on_sigterm()  # again: connecting installs Ray's own handler, which aborts the driver
            with Tracker(config.tracking, run_name=config.tracking.run_name or config.name) as tracker:
                tracker.log_params(
                    {**config.flat(), "model.resolved_path": base, "data.resolved_path": data_path}
                )
                tracker.log_params(
                    {
                        "data.train_rankings": len(train),
                        "data.heldout_rankings": len(heldout),
                        "data.heldout_mean_response_tokens": round(mean_response_tokens, 2),
                    }
                )
                out = Path(config.train.output_dir) / config.name / tracker.run_id / "reward_model"
                held = _train_and_save(
                    config, tracker, base, train_enc, heldout_enc, mean_response_tokens, out
                )
                tracker.log_artifacts(out, "reward_model")
    except KeyboardInterrupt:
        # Ctrl-C or SIGTERM (`stop_on_sigterm`): the MLflow run is marked killed and the ranks are gone.
        raise Interrupted("interrupted; a reward model is not checkpointed: run the job again") from None
    return RMSummary(
        run_id=tracker.run_id,
        model_dir=str(out),
        heldout_accuracy=held["pair_accuracy"],
        heldout_margin=held["margin"],
        train_rankings=len(train_enc),
        heldout_rankings=len(heldout_enc),
    )


def _train_and_save(
    config: RMConfig,
    tracker: Tracker,
    base: str,
    train_enc: list[EncodedRanking],
    heldout_enc: list[EncodedRanking],
    mean_response_tokens: float,
    out: Path,
) -> dict[str, float]:
    """The learner pool started, trained (`_train`), the model saved to `out`; the last held-out metrics."""
    console.log(f"MLflow run {tracker.run_id}; starting {config.learner.replicas} learner rank(s)")
    pool = _start_pool(config, base)
    try:
        held = _train(config, pool, tracker, train_enc, heldout_enc)
        pool.save_reward_model(
            str(out), _saved_info(config, base, held, mean_response_tokens, tracker.run_id)
        )
    finally:  # on a cluster, or in a process that keeps its Ray runtime, the ranks go now
        pool.shutdown()
    return held


def _saved_info(
    config: RMConfig, base: str, held: dict[str, float], mean_response_tokens: float, run_id: str
) -> dict:
    """What is saved beside the model (`reward_model.json`): how it was trained, how it did on the held-out
    rankings, and the references the reward-hacking monitor compares the policy's answers with."""
    return {
        "base_model": base,
        "loss": config.train.loss,
        "max_length": config.data.max_length,
        "heldout_pair_accuracy": held["pair_accuracy"],
        "heldout_margin": held["margin"],
        "heldout_pairs": held["pairs"],
        "score_median": held["score_median"],
        "score_scale": held["score_scale"],
        "mean_response_tokens": mean_response_tokens,
        "mlflow_run_id": run_id,
    }


def _start_pool(config: RMConfig, base: str) -> RayRewardModelPool:
    """The learner pool's ranks, each with the reward model built from `base`, ready to train."""
    build = partial(
        RayRewardModelPool,
        base,
        config.learner,
        loss=config.train.loss,
        dtype=config.model.dtype,
        seed=config.seed,
    )
    pools, seconds = start_named_pools(config, {"learner": build})
    console.log(f"learner pool started in {seconds:.1f}s")
    return pools["learner"]


def _train(
    config: RMConfig,
    pool: RayRewardModelPool,
    tracker: Tracker,
    train_enc: list[EncodedRanking],
    heldout_enc: list[EncodedRanking],
) -> dict[str, float]:
    """`train.epochs` passes in a seeded order, held-out evaluations on the way; the last one's metrics."""
    train = config.train
    rng = random.Random(config.seed)
    per_epoch = -(-len(train_enc) // train.rankings_per_batch)
    total = per_epoch * train.epochs
    step, started = 0, time.perf_counter()
    tracker.log_metrics({f"rm/heldout_{k}": v for k, v in pool.evaluate(heldout_enc).items()}, step=0)
    for _ in range(train.epochs):
        order = list(range(len(train_enc)))
        rng.shuffle(order)
        for start in range(0, len(order), train.rankings_per_batch):
            step += 1
            batch = [train_enc[i] for i in order[start : start + train.rankings_per_batch]]
            metrics = pool.train_step(batch)
            tracker.log_metrics({f"rm/{k}": v for k, v in metrics.items()}, step=step)
            if train.eval_every and step % train.eval_every == 0 and step < total:
                held = pool.evaluate(heldout_enc)
                tracker.log_metrics({f"rm/heldout_{k}": v for k, v in held.items()}, step=step)
                console.log(
                    f"step {step}/{total}  loss {metrics['loss']:.3f}  held-out accuracy "
                    f"{held['pair_accuracy']:.3f}  margin {held['margin']:.2f}"
                )
    held = pool.evaluate(heldout_enc)
    tracker.log_metrics({f"rm/heldout_{k}": v for k, v in held.items()}, step=step)
    tracker.log_metrics({"time/train_s": time.perf_counter() - started}, step=step)
    return held
