"""Pure tensor math for policy-gradient RL: advantage estimators (and GAE), per-token policy losses, KL
estimators and control, loss aggregation over global counts, and the objective that binds them."""
