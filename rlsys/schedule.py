"""Learning-rate schedules: the multiplier of the peak learning rate at an optimizer step, a pure function.

Every trainer's engine (`actors.deepspeed_engine.build_engine`) and the embedded model's build use it.
"""

import math


def lr_factor(
    step: int, *, warmup_steps: int, total_steps: int | None = None, min_ratio: float = 0.1
) -> float:
    """Linear warm-up over `warmup_steps` ((step + 1) / warmup), then constant (`total_steps` None) or a
    cosine decay from 1 to `min_ratio` at `total_steps`, flat after it:

        factor = min_ratio + (1 - min_ratio) * (1 + cos(pi * min(1, (step - warmup) / (total - warmup)))) / 2
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if total_steps is None:
        return 1.0
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
