"""rlsys: distributed RL fine-tuning for language models."""
