"""Benchmark: SFT tokens per second with packing against padded batches, the same model, data and loss.

    python bench/sft_packing.py                         # the embedded model, its arithmetic conversations
    python bench/sft_packing.py --model DIR --steps 20 --examples 64

Each optimizer step takes the same `--examples` conversations (worked and bare answers of the arithmetic
task, so lengths vary as in the embedded build's SFT) and runs the SFT ranks' code on them in this process:
`rlsys.sft.packing.micro_batches` (packed into `--max-tokens` blocks, or one conversation per row padded to
the longest of its micro-batch), `sft_loss`, AdamW. Both arms alternate step by step, so machine load hits
them alike; the first step of each is a warm-up and not counted. Tokens are the conversations' own (padding
excluded). The losses of the two arms at the first step are printed: equal, since packing keeps documents
apart.

The last line: `packed_tokens_per_s=X padded_tokens_per_s=Y ratio=X/Y`.
"""

from __future__ import annotations

import argparse
import copy
import random
import time

from _common import default_model, log, machine, median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model directory (default: the embedded model)")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--examples", type=int, default=64, help="conversations per step")
    parser.add_argument("--max-tokens", type=int, default=256, help="packed block length")
    parser.add_argument("--micro-batch", type=int, default=64, help="rows per forward")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlsys.sft.packing import micro_batches, sft_loss
    from rlsys.sft.tokens import encode_chat
    from rlsys.tasks.arithmetic import bare_solution, chat_messages, problems, worked_solution

    torch.set_num_threads(args.threads)
    model_dir = args.model or default_model()
    log(f"{machine()} model={model_dir}")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rng = random.Random(0)
    examples = [
        encode_chat(
            tokenizer,
            [
                *chat_messages(p),
                {
                    "role": "assistant",
                    "content": (bare_solution if rng.random() < 0.6 else worked_solution)(p),
                },
            ],
        )
        for p in problems("sft", args.examples * args.steps, 0)
    ]
    base = AutoModelForCausalLM.from_pretrained(model_dir)
    arms = {}
    for packing in (True, False):
        model = copy.deepcopy(base).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        arms[packing] = (model, optimizer, [], [])  # model, optimizer, tokens/s per step, first losses
    for step in range(args.steps):
        batch = examples[step * args.examples : (step + 1) * args.examples]
        reply_tokens = sum(e.trained_tokens for e in batch)
        for packing, (model, optimizer, speeds, losses) in arms.items():
            start = time.perf_counter()
            passes = micro_batches(
                batch,
                tokenizer.pad_token_id,
                packing=packing,
                max_tokens=args.max_tokens,
                max_rows=args.micro_batch,
            )
            total = 0.0
            for micro in passes:
                logits = model(**micro.model_inputs()).logits
                loss, _ = sft_loss(logits, micro.labels, reply_tokens)
                loss.backward()
                total += loss.item()
            optimizer.step()
            optimizer.zero_grad()
            seconds = time.perf_counter() - start
            if step == 0:
                losses.append(total)
            else:
                speeds.append(sum(len(e) for e in batch) / seconds)
        log(f"step {step}: packed {arms[True][2][-1:]} padded {arms[False][2][-1:]} tokens/s")
    packed, padded = median(arms[True][2]), median(arms[False][2])
    log(f"first-step loss: packed {arms[True][3][0]:.5f} padded {arms[False][3][0]:.5f}")
    print(f"packed_tokens_per_s={packed:.0f} padded_tokens_per_s={padded:.0f} ratio={packed / padded:.2f}")


if __name__ == "__main__":
    main()
