"""Pure tensor math for policy-gradient RL: advantages, losses, KL estimators, loss reduction."""
