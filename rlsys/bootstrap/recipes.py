"""The embedded model's recipes: what decides a build, and the named variants a job picks with
`model.recipe` (one cache entry each). A plain module (no torch), so the config can validate the name.

`arithmetic` (the default) is the quickstart's: multi-step word problems, 60% of the SFT answers bare, so RL
has room to teach the model to show its work. Other task families add their recipes here, each leaving RL
real headroom on its own task.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Recipe:
    """Everything that decides the built model. Any change gives a new cache key, hence a rebuild."""

    family: str = "arithmetic"
    """The task family whose text the model is pretrained and fine-tuned on (`rlsys.bootstrap.families`)."""

    vocab_size: int = 512
    """BPE vocabulary size (256 bytes + the chat's special tokens + merges); a family's own special tokens
    come on top (`rlsys.bootstrap.families`)."""
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    ffn_size: int = 512
    max_positions: int = 512
    """Context length; questions and worked answers together stay under ~250 tokens."""
    pretrain_problems: int = 30_000
    """Worked problems (from the ``pretrain`` split) in the pretraining text."""
    pretrain_fact_sheets: int = 10_000
    """Documents of eight single-operation facts each, in the pretraining text."""
    block_size: int = 256
    pretrain_steps: int = 120
    """Few: 150 and 300 steps gave nearly the same SFT model, and 120 keeps the whole build near 5 minutes."""
    pretrain_batch: int = 32
    pretrain_lr: float = 6e-3
    sft_examples: int = 20_000
    """Conversations from the ``sft`` split."""
    sft_steps: int = 1000
    """SFT gets most of the compute: its loss covers only answers, so each step teaches more arithmetic than a
    pretraining step of mostly question text (measured: 150 + 1000 steps beat 300 + 300 steps, 0.31 vs 0.12
    greedy, with worked answers right 50% of the time against 9%)."""
    sft_batch: int = 32
    sft_lr: float = 3e-3
    bare_share: float = 0.6
    """Share of SFT answers that skip what makes an answer reliable (the steps of a word problem, the lines of
    a function, the tool call): for arithmetic a bare ``#### N``, less accurate than worked ones, so RL has
    room. A
    little over one half, greedy decoding answers bare while sampling still writes the steps often enough for
    RL to find them. Measured: at 0.5 greedy chose bare for 12% to 55% of questions depending on the build's
    seed; at 0.6, 94% bare greedy and 37% worked samples (RL then took greedy accuracy from 0.16 to 0.36 in
    50 steps); at 0.7, 100% bare greedy but only 20% worked samples, and RL sharpened the bare answers."""


DEFAULT_RECIPE = Recipe()

# A 2-layer model built in seconds and barely trained, for tests and fault benchmarks, where start-up, not
# quality, is what costs. vLLM's CPU attention needs a head size of at least 32: hidden 64 with 2 heads.
TINY_RECIPE = Recipe(
    hidden_size=64,
    num_heads=2,
    ffn_size=128,
    num_layers=2,
    pretrain_problems=300,
    pretrain_fact_sheets=50,
    pretrain_steps=2,
    pretrain_batch=4,
    sft_examples=100,
    sft_steps=2,
    sft_batch=4,
)

RECIPES: dict[str, Recipe] = {
    "arithmetic": DEFAULT_RECIPE,
    # Programming problems (`rlsys.tasks.code`): a bare_share of the answers return the example's answer.
    "code": Recipe(
        family="code",
        pretrain_problems=20_000,
        pretrain_fact_sheets=0,
        pretrain_steps=150,
        sft_examples=20_000,
        sft_steps=800,
        bare_share=0.6,
    ),
    # Large-number arithmetic (`rlsys.tasks.tool_arithmetic`): a bare_share of the answers guessed without
    # the Python tool, whose call tokens the family's tokenizer adds. Copying the operands into the snippet
    # is what takes training: with four-digit operands no sampled call copied them right, after 100 + 400
    # steps (bare_share 0.7) nor after 150 + 1500 (0.6), hence the task's two- and three-digit operands.
    "tools": Recipe(
        family="tools",
        pretrain_problems=20_000,
        pretrain_fact_sheets=0,
        pretrain_steps=150,
        sft_examples=20_000,
        sft_steps=1500,
        bare_share=0.6,
    ),
    # Facts about invented people (`rlsys.tasks.facts`): the model learns the stated people's towns and trades
    # and answers every question, making up an answer about anyone else. Built at seed 0: 600 SFT steps left
    # it right on 63% of the stated people's facts (greedy), 1500 steps on all of 100 asked.
    "facts": Recipe(
        family="facts",
        pretrain_problems=20_000,
        pretrain_fact_sheets=0,
        pretrain_steps=150,
        sft_examples=20_000,
        sft_steps=1500,
        bare_share=0.0,
    ),
}
