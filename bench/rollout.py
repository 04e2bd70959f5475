"""Benchmark: rollout generation with rlsys's vLLM engine against Hugging Face `generate`, same prompts and
sampling settings, in one process.

Measures generated tokens per second for each (prompts per batch, samples per prompt n) in a grid, with
`actors.rollout.RolloutEngine` (the object each rollout-pool actor hosts) and with
`AutoModelForCausalLM.generate` (left-padded batch, `num_return_sequences=n`, `do_sample`, same temperature,
top-p and token limit). vLLM gets per-request seeds as in training (`rlsys.data.request_seed`; `--no-seeded`
drops them). Prompts are held-out arithmetic problems in the model's chat template. A sequence's
tokens count up to and including its end-of-turn token; HF's padding steps after a sequence has finished
are its own cost. After a warm-up call, each cell is timed up to `--repeat` times (stopping once it has taken
`--cell-budget-s`) and the best tokens/s of each engine is kept: the machine is shared, so the best run is the
least disturbed one.

Run locally (a few minutes on 2 cores; the engine takes ~10-40 s to start):

    python bench/rollout.py [--model DIR] [--prompts 4 16 64] [--n 1 8] [--max-new-tokens 96]
    python bench/rollout.py --random-hidden 512 --random-layers 8   # a larger random model, same tokenizer

The last line is `rollout_speedup=<geometric mean of vLLM/HF tokens/s> rollout_speedup_largest=<at the
largest cell> ...`.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

from _common import default_model, loadavg, log, machine, param_count, random_model


def _prompts(count: int):
    from rlsys.config import TaskConfig
    from rlsys.data import task_prompts

    return task_prompts(TaskConfig(), "eval", count)


def _hf_generate(model, tokenizer, token_ids: list[list[int]], n: int, temperature: float, max_new: int):
    """Sampled completions with HF generate; returns the generated token count (up to each EOS)."""
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    width = max(len(ids) for ids in token_ids)
    input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in token_ids])  # (B, T) left-padded
    attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in token_ids])
    with torch.no_grad():
        out = model.generate(
            input_ids=input_ids,
            attention_mask=attention,
            do_sample=temperature > 0,
            temperature=temperature if temperature > 0 else None,
            top_p=1.0,
            top_k=0,
            max_new_tokens=max_new,
            num_return_sequences=n,
            pad_token_id=pad,
            eos_token_id=model.generation_config.eos_token_id,
        )
    new = out[:, width:]  # (B*n, <=max_new)
    eos = model.generation_config.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos])
    total = 0
    for row in new.tolist():
        length = len(row)
        for i, token in enumerate(row):
            if token in eos_ids:
                length = i + 1
                break
        total += length
    return total


def _profile(engine, prompts, args) -> None:
    """Where a training rollout's time goes: seeded vs unseeded sampling, and the hottest functions."""
    import cProfile
    import io
    import pstats

    from rlsys.order import request_seed
    from rlsys.types import Sampling

    settings = Sampling(n=8, temperature=args.temperature, max_new_tokens=args.max_new_tokens)
    batch = prompts[:16]
    timings = {}
    for label, seeds in (("seeded", [request_seed(0, 0, i) for i in range(16)]), ("unseeded", None)):
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            groups = engine.generate(batch, settings, seeds)
            best = min(best, time.perf_counter() - t)
        tokens = sum(len(s.token_ids) for g in groups for s in g)
        longest = max(len(s.token_ids) for g in groups for s in g)
        timings[label] = best
        log(f"{label}: {best:.2f}s for {tokens} tokens (longest {longest}): {tokens / best:.0f} tok/s")
    profiler = cProfile.Profile()
    profiler.enable()
    engine.generate(batch, settings, [request_seed(0, 0, i) for i in range(16)])
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
    print(out.getvalue())
    print(f"seeded_over_unseeded={timings['seeded'] / timings['unseeded']:.2f} load={loadavg():.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="HF model directory (default: the embedded model)")
    parser.add_argument("--prompts", type=int, nargs="+", default=[4, 16, 64], help="prompts per batch")
    parser.add_argument("--n", type=int, nargs="+", default=[1, 8], help="samples per prompt")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per cell at most (best is kept)")
    parser.add_argument("--cell-budget-s", type=float, default=5.0, help="stop repeating a cell after this")
    parser.add_argument(
        "--seeded",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="per-request sampling seeds, as training rollouts use (--no-seeded: vLLM's batched sampler)",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile one training-shaped rollout (16 prompts x 8): seeded vs not, cProfile",
    )
    parser.add_argument("--random-hidden", type=int, default=0, help="use a random model of this width")
    parser.add_argument("--random-layers", type=int, default=8)
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from actors.rollout import RolloutEngine
    from rlsys.order import request_seed
    from rlsys.types import Sampling

    if args.threads:
        torch.set_num_threads(args.threads)
    model_dir = args.model or default_model()
    if args.random_hidden:
        out = Path(tempfile.mkdtemp(prefix="rlsys-bench-random-"))
        heads = max(1, args.random_hidden // 64)
        model_dir = str(
            random_model(
                model_dir,
                out,
                hidden=args.random_hidden,
                layers=args.random_layers,
                heads=heads,
                ffn=4 * args.random_hidden,
            )
        )
    log(f"model {model_dir} ({param_count(model_dir) / 1e6:.1f}M params); {machine()}")

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    hf = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    start = time.perf_counter()
    engine = RolloutEngine(model_dir, seed=0, threads=args.threads)
    log(f"vLLM engine up in {time.perf_counter() - start:.1f}s")

    prompts = _prompts(max(args.prompts))
    token_ids = [engine.prompt_token_ids(p) for p in prompts]
    # Warm-up of both paths (first-call compilation, allocator growth).
    warm = Sampling(n=2, temperature=args.temperature, max_new_tokens=8)
    engine.generate(prompts[:2], warm)
    _hf_generate(hf, tokenizer, token_ids[:2], 2, args.temperature, 8)

    if args.profile:
        _profile(engine, prompts, args)
        return

    rows, ratios = [], []
    for batch in args.prompts:
        for n in args.n:
            settings = Sampling(n=n, temperature=args.temperature, max_new_tokens=args.max_new_tokens)
            best_v = best_h = 0.0
            spent = 0.0
            for attempt in range(args.repeat):
                if attempt and spent > args.cell_budget_s:
                    break  # a long cell is stable enough; small cells are repeated to tame the noise
                t = time.perf_counter()
                seeds = [request_seed(0, 0, i) for i in range(batch)] if args.seeded else None
                groups = engine.generate(prompts[:batch], settings, seeds)
                v_tokens = sum(len(s.token_ids) for g in groups for s in g)
                v_time = time.perf_counter() - t
                t = time.perf_counter()
                h_tokens = _hf_generate(
                    hf, tokenizer, token_ids[:batch], n, args.temperature, args.max_new_tokens
                )
                h_time = time.perf_counter() - t
                best_v, best_h = max(best_v, v_tokens / v_time), max(best_h, h_tokens / h_time)
                spent += v_time + h_time
            ratios.append(best_v / best_h)
            rows.append((batch, n, best_v, best_h, v_tokens, h_tokens))
            log(
                f"prompts={batch:3d} n={n}: vLLM {best_v:7.0f} tok/s ({v_tokens} tok)  "
                f"HF {best_h:7.0f} tok/s ({h_tokens} tok)  ratio {best_v / best_h:.2f}  {machine()}"
            )
    print("| prompts | n | vLLM tok/s | HF tok/s | ratio |")
    print("|---|---|---|---|---|")
    for batch, n, v, h, _, _ in rows:
        print(f"| {batch} | {n} | {v:.0f} | {h:.0f} | {v / h:.2f} |")
    geomean = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    print(
        f"rollout_speedup={geomean:.2f} rollout_speedup_largest={ratios[-1]:.2f} "
        f"rollout_speedup_min={min(ratios):.2f} torch_threads={torch.get_num_threads()} "
        f"load={loadavg():.1f}"
    )


if __name__ == "__main__":
    main()
