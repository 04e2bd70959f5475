"""The embedded default model: a tiny chat model built offline (tokenizer, pretraining, SFT) and cached."""

from pathlib import Path

from rlsys.bootstrap.build import DEFAULT_RECIPE, Recipe, ensure_embedded_model
from rlsys.config import EMBEDDED_MODEL, ModelConfig

__all__ = ["DEFAULT_RECIPE", "Recipe", "ensure_embedded_model", "resolve_model"]


def resolve_model(model: ModelConfig) -> str:
    """The model directory a job loads: its `model.path`, or the embedded model (built on first use)."""
    if model.path != EMBEDDED_MODEL:
        return str(Path(model.path).expanduser().resolve())
    return str(ensure_embedded_model(seed=model.seed))
