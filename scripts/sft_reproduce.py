"""Repeat the embedded build's SFT stage with `rlsys sft` on the learner pool, and compare held-out losses.

    python scripts/sft_reproduce.py                        # the default recipe; rlsys sft at seeds 0 1 2
    python scripts/sft_reproduce.py --recipe code --seeds 0 1

The build (`rlsys.bootstrap.build`) keeps its pretrained model (`<model>/pretrained`) and measures the SFT
stage's loss on conversations held out of the same draw (`sft_heldout_loss` in `build_info.json`). This
script writes that draw's training and held-out conversations as JSONL and runs `rlsys sft` from the
pretrained model with the build's settings: its steps, conversations per step and peak learning rate, 30
warm-up steps, a cosine to 10%, AdamW betas (0.9, 0.95), weight decay 0.01, gradient norm clipped at 1 -- on
DeepSpeed ranks, with packing. What differs is the order of the conversations: the build draws each batch at
random with replacement, `rlsys sft` goes through them epoch by epoch in a seeded order. The seeds' spread is
the training noise; the build's loss is "within noise" when it lies within two standard deviations of their
mean. The last line:

    build_heldout_loss=X sft_heldout_loss=M sft_heldout_loss_sd=S within_noise=true|false
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipe", default="arithmetic", help="embedded recipe (default: arithmetic)")
    parser.add_argument("--build-seed", type=int, default=0, help="seed of the build (default 0)")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the rlsys sft runs (default 0 1 2)"
    )
    parser.add_argument("--replicas", type=int, default=1, help="learner ranks of each run (default 1)")
    parser.add_argument("--data", type=Path, default=Path("data/sft_build"), help="where the JSONL goes")
    parser.add_argument("--runs", default="runs", help="output_dir of the SFT runs")
    args = parser.parse_args()
    if len(args.seeds) < 2:
        parser.error("--seeds: give at least two, their spread is the noise the build is compared with")

    from rlsys import sft_job
    from rlsys.atomic import write_text
    from rlsys.bootstrap.build import ensure_embedded_model, sft_conversations
    from rlsys.bootstrap.families import FAMILIES
    from rlsys.bootstrap.recipes import RECIPES
    from rlsys.console import console
    from rlsys.sft.config import load_sft_config
    from rlsys.sft.tokens import encode_chat

    if args.recipe not in RECIPES:
        parser.error(f"--recipe: '{args.recipe}' is not one of {', '.join(RECIPES)}")
    recipe = RECIPES[args.recipe]
    if FAMILIES[recipe.family].encode is not encode_chat:
        parser.error(
            f"--recipe {args.recipe}: its conversations have tool turns, which rlsys sft does not train"
        )
    model_dir = ensure_embedded_model(seed=args.build_seed, recipe=recipe)
    # The cache key hashes the build's own source, so a model found here was built by this build code.
    info = json.loads((model_dir / "build_info.json").read_text())

    train_rows, heldout_rows = sft_conversations(recipe, args.build_seed)
    files = {}
    for split, rows in (("train", train_rows), ("eval", heldout_rows)):
        files[split] = args.data / f"{model_dir.name}-{split}.jsonl"
        write_text(files[split], "".join(json.dumps({"messages": row}) + "\n" for row in rows))
    console.log(f"{len(train_rows)} training and {len(heldout_rows)} held-out conversations in {args.data}")

    losses = []
    for seed in args.seeds:
        summary = sft_job.run(
            load_sft_config(
                ROOT / "jobs" / "sft_quickstart.yaml",
                [
                    f"seed={seed}",
                    f"name=sft_reproduce_{args.recipe}",
                    f"model.path={model_dir / 'pretrained'}",
                    f"data.train={files['train']}",
                    f"data.eval={files['eval']}",
                    f"data.eval_size={len(heldout_rows)}",
                    f"data.max_tokens={recipe.max_positions}",
                    f"learner.replicas={args.replicas}",
                    f"learner.lr={recipe.sft_lr}",
                    "learner.warmup_steps=30",
                    "learner.betas=[0.9, 0.95]",
                    "learner.weight_decay=0.01",
                    "learner.grad_clip=1.0",
                    f"train.steps={recipe.sft_steps}",
                    f"train.examples_per_step={recipe.sft_batch}",
                    f"train.eval_every={max(1, recipe.sft_steps // 4)}",
                    "train.checkpoint_every=0",
                    f"train.output_dir={args.runs}",
                    "tracking.experiment=sft_reproduce",
                ],
            )
        )
        losses.append(summary.loss_after)
        console.log(
            f"rlsys sft seed {seed}: held-out loss {summary.loss_before:.4f} -> {summary.loss_after:.4f} "
            f"({summary.tokens_per_s:.0f} tok/s)"
        )

    build_loss = info["sft_heldout_loss"]
    mean, sd = statistics.mean(losses), statistics.stdev(losses)
    console.log(
        f"held-out loss of the build's SFT stage {build_loss:.4f}; of rlsys sft {mean:.4f} +- {sd:.4f} "
        f"over seeds {' '.join(map(str, args.seeds))} ({', '.join(f'{loss:.4f}' for loss in losses)})"
    )
    print(
        f"build_heldout_loss={build_loss:.4f} sft_heldout_loss={mean:.4f} sft_heldout_loss_sd={sd:.4f} "
        f"within_noise={str(abs(build_loss - mean) <= 2 * sd).lower()}"
    )


if __name__ == "__main__":
    main()
