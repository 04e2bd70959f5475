"""Benchmark: the policy-gradient algorithms on the quickstart setting, over seeds, against GRPO.

    python bench/algorithms.py                                     # every algorithm, seeds 0 1 2, 150 steps
    python bench/algorithms.py --algorithms grpo dapo --seeds 0 1 --steps 60
    python bench/algorithms.py --set dapo:learner.lr=2e-4          # a variant's own overrides

Each (algorithm, seed) is a whole quickstart job (`rlsys.job.run`: real Ray pools, vLLM, DeepSpeed, the math
verifier) with `algorithm.name` set and `seed` the job's sampling seed, run one after another in this
process; metrics come back from a throw-away MLflow store. Reported per algorithm, mean ± sd over seeds:
held-out greedy and sampled accuracy at the end and their gains over step 0, the first step (and training
wall time) at which greedy accuracy reached step 0 + `--target-gain`, and response tokens trained per second.
GRPO, today's default, is the baseline in the same run. The last line:

    algorithms=N best=NAME best_sampled_gain=X grpo_sampled_gain=Y beats_grpo_sampled=true|false

where `best` has the highest mean sampled gain and it "beats" GRPO when its mean exceeds GRPO's by more than
the larger of their two standard deviations (the seed-to-seed spread).
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path

from _common import ROOT, default_model, log, machine, spread

ALGORITHMS = ("grpo", "dr_grpo", "rloo", "reinforce_pp", "dapo", "gspo", "cispo", "ppo", "rft")
# What an algorithm needs besides its name on the quickstart's 2 CPUs, all of which its pools reserve: PPO's
# critic takes turns with the learner (values and its step, then the policy's step), so it reserves none.
NEEDS = {"ppo": ["critic.num_cpus=0"]}


@dataclass(frozen=True)
class Outcome:
    greedy: float
    sampled: float
    greedy_gain: float
    sampled_gain: float
    steps_to_target: int | None
    seconds_to_target: float | None
    tokens_per_s: float


def run_one(model_dir: str, name: str, seed: int, args, overrides: list[str], store: Path) -> Outcome:
    import mlflow

    from rlsys.config import load_job
    from rlsys.job import run

    config = load_job(
        ROOT / "jobs" / "quickstart.yaml",
        [
            f"model.path={model_dir}",
            f"algorithm.name={name}",
            f"seed={seed}",
            f"train.steps={args.steps}",
            f"train.eval_every={args.eval_every}",
            f"task.eval_size={args.eval_size}",
            "train.checkpoint_every=0",
            "tracking.registered_model=null",
            f"tracking.tracking_uri=sqlite:///{store / 'mlflow.db'}",
            f"tracking.experiment=algorithms-{name}",
            f"train.output_dir={store / 'runs'}",
            *overrides,
        ],
    )
    summary = run(config)
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")

    def history(key: str) -> dict[int, float]:
        return {m.step: m.value for m in client.get_metric_history(summary.run_id, key)}

    greedy, step_s = history("eval/accuracy"), history("time/step_s")
    tokens = history("train/response_length")
    target = greedy[0] + args.target_gain
    reached = [step for step in sorted(greedy) if step > 0 and greedy[step] >= target]
    steps_to_target = reached[0] if reached else None
    seconds = sum(v for step, v in step_s.items() if steps_to_target and step <= steps_to_target)
    samples_per_step = config.train.prompts_per_step * config.rollout.samples_per_prompt
    tokens_per_s = sum(tokens[s] * samples_per_step for s in tokens) / max(sum(step_s.values()), 1e-9)
    return Outcome(
        greedy=summary.accuracy_after,
        sampled=summary.sampled_after,
        greedy_gain=summary.accuracy_after - summary.accuracy_before,
        sampled_gain=summary.sampled_after - summary.sampled_before,
        steps_to_target=steps_to_target,
        seconds_to_target=seconds if steps_to_target else None,
        tokens_per_s=tokens_per_s,
    )


def _cell(values: list[float | None], fmt: str) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return "not reached"
    mean, sd = spread(known)
    missed = f" ({len(values) - len(known)} not)" if len(known) < len(values) else ""
    return f"{mean:{fmt}} ± {sd:{fmt}}{missed}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="HF model directory (default: the embedded model)")
    parser.add_argument("--algorithms", nargs="+", default=list(ALGORITHMS), choices=ALGORITHMS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--eval-every", type=int, default=25)
    parser.add_argument("--eval-size", type=int, default=500)
    parser.add_argument("--target-gain", type=float, default=0.10)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="ALGORITHM:KEY=VALUE",
        help="a job-config override for one algorithm's runs (repeatable)",
    )
    args = parser.parse_args()
    if "grpo" not in args.algorithms:
        args.algorithms.insert(0, "grpo")  # the baseline is always measured in the same run
    overrides: dict[str, list[str]] = {name: list(NEEDS.get(name, [])) for name in args.algorithms}
    for item in args.set:
        name, _, override = item.partition(":")
        overrides[name].append(override)
    model_dir = args.model or default_model()
    log(f"model {model_dir}; {machine()}")
    results: dict[str, list[Outcome]] = {}
    with tempfile.TemporaryDirectory(prefix="rlsys-bench-algorithms-") as tmp:
        # Seed by seed, every algorithm each: a run cut short still compares them all on the seeds it did.
        for seed in args.seeds:
            for name in args.algorithms:
                outcome = run_one(model_dir, name, seed, args, overrides[name], Path(tmp))
                results.setdefault(name, []).append(outcome)
                log(f"{name} seed {seed}: {outcome}  {machine()}")
    columns = ("greedy", "sampled", "greedy gain", "sampled gain", "steps to target", "s to target", "tok/s")
    print("| algorithm | " + " | ".join(columns) + " |")
    print("|" + "---|" * 8)
    for name, outcomes in results.items():
        cells = [
            _cell([o.greedy for o in outcomes], ".3f"),
            _cell([o.sampled for o in outcomes], ".3f"),
            _cell([o.greedy_gain for o in outcomes], ".3f"),
            _cell([o.sampled_gain for o in outcomes], ".3f"),
            _cell([o.steps_to_target for o in outcomes], ".0f"),
            _cell([o.seconds_to_target for o in outcomes], ".0f"),
            _cell([o.tokens_per_s for o in outcomes], ".0f"),
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")
    sampled = {name: spread([o.sampled_gain for o in outcomes]) for name, outcomes in results.items()}
    best = max(sampled, key=lambda name: sampled[name][0])
    (best_mean, best_sd), (grpo_mean, grpo_sd) = sampled[best], sampled["grpo"]
    beats = best != "grpo" and best_mean - grpo_mean > max(best_sd, grpo_sd)
    print(
        f"algorithms={len(results)} best={best} best_sampled_gain={best_mean:.3f} "
        f"grpo_sampled_gain={grpo_mean:.3f} beats_grpo_sampled={str(beats).lower()}"
    )


if __name__ == "__main__":
    main()
