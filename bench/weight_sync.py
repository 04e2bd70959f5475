"""Benchmark: weight-sync time against RL step time, for the embedded model and a larger random model of the
same architecture.

Each model runs the quickstart job's steps through the real learner loop (`RLLoop.train_steps`:
rollout pool → verifier pool → DeepSpeed learner pool → `RolloutPool.sync_weights`) in a private local Ray
runtime, and reads `time/sync_s` and `time/step_s` from the loop's own metrics. After the steps, the sync is
split into its two halves, timed separately: the learner rank packing its weights into one buffer and putting
it in Ray's object store (`LearnerPool.weights`), then each engine mapping it and loading it with
`collective_rpc` + `reload_weights` (`RolloutPool.sync_weights`).

The random model (default hidden 768, 12 layers, ~85M parameters) never emits an end-of-turn token, so its
rollouts all run to the token limit and score 0; uninformative groups are kept (zero advantages) so the
learner still runs a full forward/backward, and the batch is smaller (4 prompts × 4 samples, 32 tokens)
so a step takes tens of seconds rather than minutes on 2 cores.

Run locally (about 4 minutes on 2 cores):

    python bench/weight_sync.py [--model DIR] [--steps 4] [--large-hidden 768 --large-layers 12]
    python bench/weight_sync.py --skip-large        # the embedded model only

On a GPU cluster the payload would not pass through the object store at all: NCCL broadcasts from the learner
rank into each engine's worker (a process group spanning learner and engines, as in vLLM's RLHF example),
about size / NVLink-or-IB bandwidth (400 MB: ~10-40 ms), and a colocated engine can map the learner's tensors
by CUDA IPC handles with no copy. The CPU path here pays a copy to CPU, a serialisation into the object store,
a fetch per node and a repack in `reload_weights`.

The last line is `sync_share_tiny=<sync/step> sync_share_large=<sync/step> ...`.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from _common import (
    RlsysSteps,
    default_model,
    loadavg,
    log,
    machine,
    median,
    param_count,
    random_model,
    start_ray,
)


def _measure(model_dir: str, overrides: list[str], steps: int, label: str) -> dict[str, float]:
    import ray

    run = RlsysSteps(model_dir, overrides)
    try:
        log(f"{label}: pools up; warm-up step")
        run.step(1)
        rows = []
        for step in range(2, steps + 2):
            metrics = run.step(step)
            rows.append(metrics)
            phases = "  ".join(
                f"{k} {metrics[f'time/{k}_s']:.3f}s" for k in ("step", "generate", "train", "sync")
            )
            log(f"{label} step {step}: {phases}  {machine()}")
        # The two halves of a sync, timed apart.
        gather, load = [], []
        for version in range(steps + 2, steps + 5):
            t = time.perf_counter()
            ref = run.pools.learner.weights()
            ray.wait([ref], fetch_local=False)
            gather.append(time.perf_counter() - t)
            t = time.perf_counter()
            run.pools.rollout.sync_weights(ref, version=version)
            load.append(time.perf_counter() - t)
        step_s = median(r["time/step_s"] for r in rows)
        sync_s = median(r["time/sync_s"] for r in rows)
        return {
            "params_m": param_count(model_dir) / 1e6,
            "step_s": step_s,
            "generate_s": median(r["time/generate_s"] for r in rows),
            "train_s": median(r["time/train_s"] for r in rows),
            "sync_s": sync_s,
            "gather_s": median(gather),
            "load_s": median(load),
            "share": sync_s / step_s,
        }
    finally:
        run.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="HF model directory (default: the embedded model)")
    parser.add_argument("--steps", type=int, default=4, help="timed steps per model (after one warm-up)")
    parser.add_argument("--large-hidden", type=int, default=768)
    parser.add_argument("--large-layers", type=int, default=12)
    parser.add_argument("--skip-large", action="store_true", help="only the embedded model")
    parser.add_argument(
        "--ray-niceness", type=int, default=0, help="niceness of the pool actors (Ray's own default: 15)"
    )
    args = parser.parse_args()

    import ray

    model_dir = args.model or default_model()
    log(f"model {model_dir}; {machine()}")
    # Logical CPUs: the quickstart's pools (1 + 0.25 + 0.75) share the 2 physical cores.
    start_ray(num_cpus=4, niceness=args.ray_niceness)
    results = {}
    try:
        results["tiny"] = _measure(model_dir, [], args.steps, "tiny")
        if not args.skip_large:
            out = Path(tempfile.mkdtemp(prefix="rlsys-bench-large-"))
            hidden = args.large_hidden
            large = random_model(
                model_dir, out, hidden=hidden, layers=args.large_layers, heads=hidden // 64, ffn=4 * hidden
            )
            small_batch = [
                "train.prompts_per_step=4",
                "rollout.samples_per_prompt=4",
                "rollout.max_new_tokens=32",
                "algorithm.drop_uninformative_groups=false",
                "learner.micro_batch_size=16",
            ]
            try:
                results["large"] = _measure(str(large), small_batch, args.steps, "large")
            finally:
                shutil.rmtree(out, ignore_errors=True)
    finally:
        ray.shutdown()

    print("| model | params | step s | generate s | train s | sync s | gather s | load s | sync/step |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        times = " | ".join(
            f"{r[k]:.3f}" for k in ("step_s", "generate_s", "train_s", "sync_s", "gather_s", "load_s")
        )
        print(f"| {name} | {r['params_m']:.1f}M | {times} | {100 * r['share']:.1f}% |")
    line = " ".join(f"sync_share_{name}={r['share']:.3f}" for name, r in results.items())
    line += " " + " ".join(f"sync_s_{name}={r['sync_s']:.3f}" for name, r in results.items())
    print(f"{line} load={loadavg():.1f}")


if __name__ == "__main__":
    main()
