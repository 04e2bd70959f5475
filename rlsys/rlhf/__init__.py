"""RLHF building blocks: ranking data, ranking losses, the reward model, the hidden preference of the
quickstart, and the reward-hacking monitor.

Each module stands alone; heavy imports (transformers, deepspeed, mlflow) stay inside the functions that
need them, so the data, loss and monitor modules import in milliseconds.
"""
