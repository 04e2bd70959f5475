"""The embedded default model: a tiny chat model built offline (tokenizer, pretraining, SFT) and cached."""

from rlsys.bootstrap.build import ensure_embedded_model
from rlsys.bootstrap.recipes import DEFAULT_RECIPE, RECIPES, Recipe

__all__ = ["DEFAULT_RECIPE", "RECIPES", "Recipe", "ensure_embedded_model"]
