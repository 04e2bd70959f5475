"""Ray actor pools: rollout (vLLM), verifier, learner (DeepSpeed)."""
