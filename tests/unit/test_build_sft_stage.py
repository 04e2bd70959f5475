"""The build's SFT stage: it keeps its starting point and measures a held-out loss the way `rlsys sft` does,
on conversations held out of the same draw without changing the ones it trains on."""

import json
from dataclasses import replace

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from rlsys.bootstrap import train
from rlsys.bootstrap.build import HELDOUT_CONVERSATIONS, sft_conversations
from rlsys.bootstrap.families import FAMILIES
from rlsys.bootstrap.recipes import RECIPES, TINY_RECIPE
from rlsys.sft.packing import micro_batches, sft_loss


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_holding_out_leaves_the_training_conversations_as_they_were(name):
    recipe = replace(RECIPES[name], sft_examples=40)
    trained, heldout = sft_conversations(recipe, seed=3)
    assert trained == FAMILIES[recipe.family].conversations(recipe, 3)
    assert len(heldout) == HELDOUT_CONVERSATIONS
    assert trained[-1] != heldout[0]


def test_the_build_keeps_its_pretrained_model_and_its_heldout_loss(tiny_model_dir):
    info = json.loads((tiny_model_dir / "build_info.json").read_text())
    pretrained = AutoModelForCausalLM.from_pretrained(tiny_model_dir / "pretrained")
    final = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert not torch.equal(
        pretrained.model.layers[0].mlp.up_proj.weight, final.model.layers[0].mlp.up_proj.weight
    )
    assert AutoTokenizer.from_pretrained(tiny_model_dir / "pretrained").chat_template

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    examples = [FAMILIES["arithmetic"].encode(tok, c) for c in sft_conversations(TINY_RECIPE, 0)[1]]
    # What rlsys sft reports as eval/loss for the same conversations: packed, summed, over reply tokens.
    summed, tokens = 0.0, 0.0
    with torch.no_grad():
        for batch in micro_batches(examples, tok.pad_token_id, packing=True, max_tokens=512, max_rows=8):
            loss, metrics = sft_loss(final(**batch.model_inputs()).logits, batch.labels, 1)
            summed, tokens = summed + loss.item(), tokens + metrics["tokens"]
    assert info["sft_heldout_loss"] == pytest.approx(summed / tokens, rel=1e-4)
    assert info["sft_heldout_conversations"] == HELDOUT_CONVERSATIONS
    assert train.heldout_loss(pretrained, examples, tok.pad_token_id, 16) > info["sft_heldout_loss"]
