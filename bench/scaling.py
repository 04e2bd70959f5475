"""Benchmark: RL step time as the rollout pool and the verifier pool grow from one replica, on this machine.

For each rollout pool size R (a fresh set of pools; with R engines each engine gets max(1, cores // R) torch
threads, so R=1 is not handicapped) and each verifier pool size V (a prefix of the largest verifier pool, so
verifiers are not restarted between sizes), the quickstart job's steps run through the real learner loop
(`RLLoop.train_steps`) and the median step time and phase times are reported, against R=1, V=1.

A calibration pass then measures the two costs the cluster model needs: engine-seconds of generation per
sample (g) and verifier-seconds per sample (v, from `Reward.elapsed_s`). With N samples per step, streaming
scoring, R engines and V verifiers, a step takes about

    max(N g / R, N v / V) + train + sync        (when scoring keeps up, only the last chunk's scoring shows)

so the rollout pool bounds the step while V / R > v / g, and the verifier pool once V / R < v / g.

Run locally (about 3-4 minutes on 2 cores):

    python bench/scaling.py [--model DIR] [--rollout 1 2] [--verifiers 1 2 4] [--steps 3]

The last line is `best_speedup=<step time R=1,V=1 / best> best_config=R<r>V<v> gen_per_verify=<g/v> ...`.
"""

from __future__ import annotations

import argparse
import os

from _common import RlsysSteps, default_model, loadavg, log, machine, median, start_ray


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="HF model directory (default: the embedded model)")
    parser.add_argument("--rollout", type=int, nargs="+", default=[1, 2], help="rollout pool sizes")
    parser.add_argument("--verifiers", type=int, nargs="+", default=[1, 2, 4], help="verifier pool sizes")
    parser.add_argument(
        "--steps", type=int, default=3, help="timed steps per configuration (after a warm-up)"
    )
    parser.add_argument(
        "--ray-niceness", type=int, default=0, help="niceness of the pool actors (Ray's own default: 15)"
    )
    args = parser.parse_args()

    import ray

    from rlsys.order import request_seed, step_batch
    from rlsys.scoring import sample_and_score

    model_dir = args.model or default_model()
    log(f"model {model_dir}; {machine()}")
    cores = os.cpu_count() or 1
    # Logical CPUs so every configuration fits; the physical cores are what is being shared.
    start_ray(num_cpus=max(args.rollout) + max(args.verifiers) + 2, niceness=args.ray_niceness)
    results: dict[tuple[int, int], dict[str, float]] = {}
    costs = {}
    step = 0
    try:
        for replicas in args.rollout:
            threads = max(1, cores // replicas)
            run = RlsysSteps(
                model_dir,
                [
                    f"rollout.replicas={replicas}",
                    f"rollout.engine_threads={threads}",
                    f"verifier.replicas={max(args.verifiers)}",
                ],
            )
            all_verifiers = list(run.pools.verifier.actors)
            try:
                for verifiers in args.verifiers:
                    run.pools.verifier.actors = all_verifiers[:verifiers]
                    step += 1
                    run.step(step)  # warm-up at this size
                    rows = []
                    for _ in range(args.steps):
                        step += 1
                        rows.append(run.step(step))
                    result = {key: median(r[key] for r in rows) for key in rows[0] if key.startswith("time/")}
                    results[(replicas, verifiers)] = result
                    log(
                        f"R={replicas} V={verifiers}: step {result['time/step_s']:.2f}s  "
                        f"gen {result['time/generate_s']:.2f}s  verify-wait {result['time/verify_s']:.3f}s  "
                        f"train {result['time/train_s']:.2f}s  sync {result['time/sync_s']:.3f}s  {machine()}"
                    )
                if replicas == args.rollout[0]:
                    # Calibration: generation and verification cost per sample, with one verifier.
                    run.pools.verifier.actors = all_verifiers[:1]
                    config = run.config
                    prompts = step_batch(run.loop.train_prompts, 10_000, config.train.prompts_per_step, 0)
                    seeds = [request_seed(0, 10_000, i) for i in range(len(prompts))]
                    scored = sample_and_score(
                        run.pools.rollout, [run.pools.verifier], prompts, run.loop.sampling, seeds
                    )
                    samples = sum(len(g) for g in scored.groups)
                    costs["g"] = scored.generate_s * replicas / samples
                    costs["v"] = median(r.elapsed_s for group in scored.rewards for r in group)
                    log(
                        f"per sample: generation {1e3 * costs['g']:.1f} engine-ms, verification "
                        f"{1e3 * costs['v']:.2f} verifier-ms"
                    )
            finally:
                run.close()
                for actor in all_verifiers + run.pools.rollout.actors + run.pools.learner.actors:
                    ray.kill(actor)
    finally:
        ray.shutdown()

    base = results[(args.rollout[0], args.verifiers[0])]["time/step_s"]
    print("| rollout R | verifiers V | step s | generate s | verify wait s | train s | sync s | vs R1V1 |")
    print("|---|---|---|---|---|---|---|---|")
    for (r, v), res in results.items():
        phases = " | ".join(
            f"{res[f'time/{k}_s']:.3f}" for k in ("step", "generate", "verify", "train", "sync")
        )
        print(f"| {r} | {v} | {phases} | {base / res['time/step_s']:.2f}x |")
    best = min(results, key=lambda k: results[k]["time/step_s"])
    ratio = costs["g"] / costs["v"] if costs.get("v") else float("inf")
    print(
        f"best_speedup={base / results[best]['time/step_s']:.2f} best_config=R{best[0]}V{best[1]} "
        f"step_s_R1V1={base:.2f} gen_per_verify={ratio:.1f} load={loadavg():.1f}"
    )


if __name__ == "__main__":
    main()
