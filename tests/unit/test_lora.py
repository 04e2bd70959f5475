"""LoRA's merged weights (actors.lora): the plain model they load into computes what the adapted one does, and
merging leaves the adapted model untouched."""

import pytest
import torch

from actors.lora import merged_state_dict, with_adapters
from rlsys.config import LearnerConfig, LoraConfig


def _model() -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=40,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config).eval()


def _adapted(config: LoraConfig) -> torch.nn.Module:
    model = with_adapters(_model(), config)
    for name, parameter in model.named_parameters():
        if "lora_B" in name:  # B starts at zero (no change); give the adapters something to merge
            torch.nn.init.normal_(parameter, std=0.2)
    return model


@pytest.mark.parametrize("targets", ["all-linear", ["q_proj", "v_proj"]])
def test_the_merged_weights_compute_what_the_adapted_model_does(targets):
    adapted = _adapted(LoraConfig(rank=4, alpha=8, target_modules=targets))
    before = {name: tensor.clone() for name, tensor in adapted.state_dict().items()}
    merged = merged_state_dict(adapted)
    plain = _model()
    plain.load_state_dict(merged)  # strict: exactly the base model's names
    ids = torch.tensor([[1, 5, 7, 9, 3]])
    with torch.no_grad():
        torch.testing.assert_close(plain(input_ids=ids).logits, adapted(input_ids=ids).logits)
        with adapted.disable_adapter():
            base = adapted(input_ids=ids).logits
    assert not torch.allclose(base, plain(input_ids=ids).logits)  # the adapters changed the outputs
    assert all(torch.equal(before[name], tensor) for name, tensor in adapted.state_dict().items())


def test_only_the_adapters_train():
    adapted = _adapted(LoraConfig(rank=2, target_modules=["q_proj"]))
    trained = [name for name, parameter in adapted.named_parameters() if parameter.requires_grad]
    assert trained and all(".lora_A." in name or ".lora_B." in name for name in trained)
    assert all("q_proj" in name for name in trained)


def test_lora_is_off_unless_configured():
    assert LearnerConfig().lora is None
    assert LearnerConfig(lora={}).lora == LoraConfig(rank=8, alpha=16.0)
