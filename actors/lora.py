"""LoRA adapters on the learner's policy (`peft`): the wrapped model, and the merged weights the engines and
the saved policy take.

With `learner.lora` the base weights are frozen and only the adapters train: W' = W + (alpha / r) B A, with
A (r x d_in) and B (d_out x r) per adapted linear layer (Hu et al. 2021, "LoRA"). The optimizer then holds
state for A and B alone, and checkpoints leave the frozen base out. The rollout engines take the merged
weights W' under the base model's own names, so they serve the policy unchanged and the weight-sync check
compares those.
"""

import torch

from rlsys.config import LoraConfig

ADAPTER = "default"  # peft's name for the one adapter a model gets


def with_adapters(model: torch.nn.Module, config: LoraConfig) -> torch.nn.Module:
    """`model` with LoRA adapters on `config.target_modules`, everything else frozen (a peft `PeftModel`)."""
    import peft

    return peft.get_peft_model(
        model,
        peft.LoraConfig(
            r=config.rank,
            lora_alpha=config.alpha,
            lora_dropout=config.dropout,
            target_modules=config.target_modules,
        ),
    )


def merged_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The weights of a LoRA-wrapped `model` with each adapter folded into its layer, W + (alpha / r) B A,
    under the base model's names (what `AutoModelForCausalLM` and the engines load). The model is not
    changed: peft's merge would add the delta into the frozen weights and subtract it again, and that round
    trip drifts in floating point step after step."""
    from peft.tuners.lora import LoraLayer

    base = model.get_base_model()
    deltas = {
        f"{name}.base_layer.weight": module.get_delta_weight(ADAPTER)
        for name, module in base.named_modules()
        if isinstance(module, LoraLayer)
    }
    merged = {}
    for name, tensor in base.state_dict().items():
        if ".lora_" in name:
            continue
        merged[name.replace(".base_layer.", ".")] = tensor + deltas[name] if name in deltas else tensor
    return merged
