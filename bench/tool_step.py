"""Benchmark: what tool calls cost a training step, against the same step without them.

The tool quickstart (`jobs/tool_quickstart.yaml`: the embedded `tools` build, large-number arithmetic) on one
set of Ray pools, in one process, alternating steps with tool calls (the job's `rollout.max_tool_calls`) and
without (0: the same engines sample single-turn, so a tool call is written but never run). Everything else is
the job's: prompts, group size, learner, verifier pool (which runs the tools). Each step's cost is its wall
time per generated token (tokens the sampler produced; tool output is not generated), so the two kinds of
step compare at the same number of generated tokens. While a response waits for its tool, the engine keeps
generating the others (`rlsys.tools.run_turns`), so the tool time should mostly hide behind generation.

Run locally (several minutes on 2 cores; the tools build is made first when it is not cached):

    python bench/tool_step.py [--model DIR] [--pairs 6]

The line before last gives the figures (ms per generated token with and without tools, the same for the
generation phase alone, calls per sample, tool seconds per step, load); the last line is
`ratio=<median s/token with tools ÷ median s/token without>`. Without the tool every answer of this task is
wrong, so the baseline's steps mostly skip training (no group has a reward spread): its step is the cheaper
for that too, and the generation-phase ratio is the one that isolates the tool path.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from _common import RlsysSteps, loadavg, log, machine, median, start_ray


def _tools_model() -> str:
    from rlsys.bootstrap import RECIPES, ensure_embedded_model

    return str(ensure_embedded_model(seed=0, recipe=RECIPES["tools"]))


def _cost(metrics: dict[str, float]) -> dict[str, float]:
    """A step's figures: wall seconds, generated tokens, seconds per generated token, tool calls."""
    generated = metrics["rollout/tokens_per_s"] * metrics["time/generate_s"]
    return {
        "step_s": metrics["time/wall_s"],
        "generate_s": metrics["time/generate_s"],
        "tokens": generated,
        "s_per_token": metrics["time/wall_s"] / max(generated, 1.0),
        "generate_s_per_token": metrics["time/generate_s"] / max(generated, 1.0),
        "calls": metrics.get("tool/calls_per_sample", 0.0),
        "tool_s": metrics.get("time/tool_s", 0.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None, help="model directory (default: the embedded tools build)")
    parser.add_argument("--pairs", type=int, default=6, help="pairs of steps (with tools, without) timed")
    parser.add_argument("--warmup", type=int, default=1, help="pairs run first and not counted")
    args = parser.parse_args()

    log(machine())
    model = args.model or _tools_model()
    start_ray(num_cpus=2)
    run = RlsysSteps(model, ["train.eval_every=0", "train.checkpoint_every=0"], job="tool_quickstart.yaml")
    with_tools = run.loop.sampling
    without = replace(with_tools, max_tool_calls=0)
    rows: dict[str, list[dict[str, float]]] = {"tools": [], "baseline": []}
    step = 0
    loads = []
    try:
        for pair in range(args.warmup + args.pairs):
            for kind, sampling in (("tools", with_tools), ("baseline", without)):
                step += 1
                run.loop.sampling = sampling
                cost = _cost(run.step(step))
                loads.append(loadavg())
                log(
                    f"pair {pair} {kind:8s} step {cost['step_s']:.2f}s  generate {cost['generate_s']:.2f}s  "
                    f"tokens {cost['tokens']:.0f}  {1000 * cost['s_per_token']:.2f} ms/token  "
                    f"calls/sample {cost['calls']:.2f}  tool {cost['tool_s']:.1f}s  load {loads[-1]:.1f}"
                )
                if pair >= args.warmup:
                    rows[kind].append(cost)
    finally:
        run.close()
    print("| kind | median step s | median generate s | median generated tokens | ms/token | calls/sample |")
    print("|---|---|---|---|---|---|")
    for kind, costs in rows.items():
        figures = {key: median(c[key] for c in costs) for key in costs[0]}
        print(
            f"| {kind} | {figures['step_s']:.2f} | {figures['generate_s']:.2f} | {figures['tokens']:.0f} "
            f"| {1000 * figures['s_per_token']:.2f} | {figures['calls']:.2f} |"
        )
    tool_cost = median(c["s_per_token"] for c in rows["tools"])
    base_cost = median(c["s_per_token"] for c in rows["baseline"])
    calls = median(c["calls"] for c in rows["tools"])
    tool_generate, base_generate = (
        median(c["generate_s_per_token"] for c in rows[kind]) for kind in ("tools", "baseline")
    )
    print(
        f"tool_ms_per_token={1000 * tool_cost:.2f} baseline_ms_per_token={1000 * base_cost:.2f} "
        f"generate_ratio={tool_generate / base_generate:.2f} "
        f"calls_per_sample={calls:.2f} tool_s_per_step={median(c['tool_s'] for c in rows['tools']):.1f} "
        f"pairs={args.pairs} load={min(loads):.1f}-{max(loads):.1f}"
    )
    print(f"ratio={tool_cost / base_cost:.2f}")


if __name__ == "__main__":
    main()
