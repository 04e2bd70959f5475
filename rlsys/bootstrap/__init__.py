"""The embedded default model: a tiny chat model built offline (tokenizer, pretraining, SFT) and cached."""

from rlsys.bootstrap.build import DEFAULT_RECIPE, Recipe, ensure_embedded_model

__all__ = ["DEFAULT_RECIPE", "Recipe", "ensure_embedded_model"]
