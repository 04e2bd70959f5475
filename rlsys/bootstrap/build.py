"""Build (or reuse) the embedded default model: tokenizer, pretraining, SFT, saved as a HF model folder.

Run it on its own with ``python -m rlsys.bootstrap.build`` (prints the model folder); jobs call
``ensure_embedded_model()``, which builds on first use and then returns the cached folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from rlsys.bootstrap import train
from rlsys.bootstrap.families import FAMILIES, Conversation
from rlsys.bootstrap.recipes import DEFAULT_RECIPE, Recipe

HELDOUT_CONVERSATIONS = 256  # SFT conversations held out of the build for its held-out loss


def ensure_embedded_model(
    cache_dir: Path | None = None, seed: int = 0, progress: bool = True, recipe: Recipe = DEFAULT_RECIPE
) -> Path:
    """The folder of the embedded SFT model for ``(recipe, seed)``, built on first use.

    ``cache_dir`` defaults to ``$RLSYS_CACHE_DIR`` or ``~/.cache/rlsys``. The model is built in a
    temporary folder and renamed into place at the end, so a folder under its final name is always
    complete; an interrupted build leaves only a ``.tmp-*`` folder, which the next build ignores.
    """
    final = embedded_model_dir(cache_dir, seed, recipe)
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=final.parent))
    try:
        build_model(staging, recipe, seed, progress)
        os.rename(staging, final)
    except OSError:
        # Another process finished the same build first; its folder is equivalent to ours.
        if not final.is_dir():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def embedded_model_dir(cache_dir: Path | None = None, seed: int = 0, recipe: Recipe = DEFAULT_RECIPE) -> Path:
    """Where the embedded model for ``(recipe, seed)`` is cached (it may not be built yet)."""
    root = Path(cache_dir or os.environ.get("RLSYS_CACHE_DIR") or Path.home() / ".cache" / "rlsys")
    return root / "models" / f"embedded-{recipe_key(recipe)}-seed{seed}"


def recipe_key(recipe: Recipe) -> str:
    """A short hash of the recipe fields and of the source of the code that builds the model (this module and
    its family's `modules`), so editing the task generator or the training loop rebuilds instead of silently
    reusing a model made by older code; another family's code is not part of it."""
    digest = hashlib.sha256(json.dumps(dataclasses.asdict(recipe), sort_keys=True).encode())
    digest.update(Path(__file__).read_bytes())
    for module in FAMILIES[recipe.family].modules:
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:12]


def build_model(out_dir: Path, recipe: Recipe, seed: int, progress: bool) -> None:
    """Train tokenizer and model from scratch and save them (with ``build_info.json``) into ``out_dir``.

    The pretrained model, before SFT, is kept in ``out_dir/pretrained``: the SFT stage's starting point, from
    which `scripts/sft_reproduce.py` repeats it with `rlsys sft`. ``build_info.json`` records the SFT
    stage's loss on `heldout_conversations` (`sft_heldout_loss`).
    """
    torch.manual_seed(seed)
    started = time.perf_counter()
    family = FAMILIES[recipe.family]
    docs = family.documents(recipe, seed)
    conversations, heldout = sft_conversations(recipe, seed)
    tok = family.train_tokenizer(docs, recipe.vocab_size)
    model = LlamaForCausalLM(_model_config(recipe, tok))
    generator = torch.Generator().manual_seed(seed)

    blocks = train.pack_documents(tok, docs, recipe.block_size)
    pretrain_losses = train.train(
        model,
        train.block_batches(blocks, recipe.pretrain_batch, generator),
        recipe.pretrain_steps,
        recipe.pretrain_lr,
        "pretrain",
        progress,
    )
    pretrained = time.perf_counter()
    _save(model, tok, out_dir / "pretrained")

    examples = [family.encode(tok, conversation) for conversation in conversations]
    sft_losses = train.train(
        model,
        train.sft_batches(examples, tok.pad_token_id, recipe.sft_batch, generator),
        recipe.sft_steps,
        recipe.sft_lr,
        "sft",
        progress,
    )
    finished = time.perf_counter()
    heldout_examples = [family.encode(tok, conversation) for conversation in heldout]
    sft_heldout_loss = train.heldout_loss(model, heldout_examples, tok.pad_token_id, recipe.sft_batch)

    _save(model, tok, out_dir)
    info = {
        "recipe": dataclasses.asdict(recipe),
        "recipe_key": recipe_key(recipe),
        "seed": seed,
        "parameters": sum(p.numel() for p in model.parameters()),
        "pretrain_seconds": round(pretrained - started, 1),
        "sft_seconds": round(finished - pretrained, 1),
        "pretrain_final_loss": sum(pretrain_losses[-20:]) / len(pretrain_losses[-20:]),
        "sft_final_loss": sum(sft_losses[-20:]) / len(sft_losses[-20:]),
        "sft_heldout_loss": sft_heldout_loss,
        "sft_heldout_conversations": len(heldout),
    }
    (out_dir / "build_info.json").write_text(json.dumps(info, indent=2) + "\n")


def sft_conversations(recipe: Recipe, seed: int) -> tuple[list[Conversation], list[Conversation]]:
    """The SFT stage's ``recipe.sft_examples`` training conversations and `HELDOUT_CONVERSATIONS` more from
    the same draw, held out. Every family's draw is a stream (its first n are the same for any longer
    draw), so holding some out leaves the training conversations as they are."""
    drawn = FAMILIES[recipe.family].conversations(
        dataclasses.replace(recipe, sft_examples=recipe.sft_examples + HELDOUT_CONVERSATIONS), seed
    )
    return drawn[: recipe.sft_examples], drawn[recipe.sft_examples :]


def _save(model: LlamaForCausalLM, tok: PreTrainedTokenizerFast, out_dir: Path) -> None:
    """The model and its tokenizer as a Hugging Face folder a rollout engine or a trainer loads as it is."""
    model.generation_config = GenerationConfig(
        bos_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id
    )
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)


def _model_config(recipe: Recipe, tok: PreTrainedTokenizerFast) -> LlamaConfig:
    """A small Llama config; ``<|im_end|>`` is EOS so generation stops at the end of a reply."""
    return LlamaConfig(
        vocab_size=len(tok),
        hidden_size=recipe.hidden_size,
        intermediate_size=recipe.ffn_size,
        num_hidden_layers=recipe.num_layers,
        num_attention_heads=recipe.num_heads,
        num_key_value_heads=recipe.num_heads,
        max_position_embeddings=recipe.max_positions,
        tie_word_embeddings=True,
        bos_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        torch_dtype="float32",
    )


if __name__ == "__main__":
    print(ensure_embedded_model())
