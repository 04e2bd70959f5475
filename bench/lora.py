"""Benchmark: what LoRA saves on the learner, against full fine-tuning of the same model in the same run.

    python bench/lora.py                      # the embedded model, LoRA rank 8 on every linear layer
    python bench/lora.py --model DIR --rank 16

Two one-rank learner pools (real DeepSpeed ZeRO-2 ranks in a private local Ray runtime) start from the same
model, one full, one with `learner.lora`; each takes the same optimizer steps on the same synthetic batch
(answers of 48 tokens with alternating advantages) and then writes a checkpoint. Reported for both: the
optimizer state (`train/optimizer_state_mb`: Adam's moments and ZeRO's fp32 partitions, everything a
checkpoint saves of the optimizer), the checkpoint's size on disk and the median step time. Whether LoRA also
learns the task is a separate question, answered by the quickstart with `learner.lora.rank=8` (README).

The last line (ratios are full / LoRA):

    full_optimizer_mb=X lora_optimizer_mb=Y checkpoint_ratio=C step_time_ratio=T optimizer_ratio=R
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import default_model, log, machine, median, start_ray


def _directory_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def measure(model_dir: str, lora: dict | None, steps: int, out: Path) -> dict[str, float]:
    import ray

    from actors.pools import RayLearnerPool
    from rlsys.config import AlgorithmConfig, LearnerConfig
    from rlsys.types import TrainSequence

    config = LearnerConfig(num_cpus=1, torch_threads=1, lr=1e-4, micro_batch_size=32, lora=lora)
    pool = RayLearnerPool(model_dir, config, AlgorithmConfig(), dtype="float32", seed=0)
    try:
        ray.get(pool.ready_refs())
        batch = [
            TrainSequence((5, 6, 7, 8), tuple(range(20, 68)), 1.0 if i % 2 else -1.0, (-3.0,) * 48)
            for i in range(32)
        ]
        times, metrics = [], {}
        for _ in range(steps):
            started = time.perf_counter()
            metrics = pool.train_step(batch, kl_coef=0.0)
            times.append(time.perf_counter() - started)
        pool.save_checkpoint(str(out), "step", {})
        return {
            "optimizer_mb": metrics["optimizer_state_mb"],
            "checkpoint_mb": _directory_mb(out),
            "step_s": median(times),
        }
    finally:
        pool.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="HF model directory (default: the embedded model)")
    parser.add_argument("--rank", type=int, default=8, help="LoRA rank (learner.lora.rank)")
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps per learner")
    args = parser.parse_args()
    model_dir = args.model or default_model()
    log(machine())
    start_ray(num_cpus=2)
    with tempfile.TemporaryDirectory(prefix="rlsys-lora-") as tmp:
        full = measure(model_dir, None, args.steps, Path(tmp) / "full")
        lora = measure(model_dir, {"rank": args.rank}, args.steps, Path(tmp) / "lora")
    print(f"{'learner':<12}{'optimizer MB':>14}{'checkpoint MB':>15}{'step s':>9}")
    for name, row in (("full", full), (f"lora r={args.rank}", lora)):
        print(f"{name:<12}{row['optimizer_mb']:>14.2f}{row['checkpoint_mb']:>15.2f}{row['step_s']:>9.2f}")
    print(machine())
    print(
        f"full_optimizer_mb={full['optimizer_mb']:.2f} lora_optimizer_mb={lora['optimizer_mb']:.2f} "
        f"checkpoint_ratio={full['checkpoint_mb'] / lora['checkpoint_mb']:.1f} "
        f"step_time_ratio={full['step_s'] / lora['step_s']:.2f} "
        f"optimizer_ratio={full['optimizer_mb'] / lora['optimizer_mb']:.1f}"
    )


if __name__ == "__main__":
    main()
